"""What runs next: uploads on a small worker pool, and one paced poller for everything TikTok is processing.

The main loop calls ``step(now)`` on every pass. It collects finished work, then, unless TikTok
asked the whole app to wait:

- the upload lane: for each account that is not paused or waiting, while a global slot
  (``upload.workers``) and one of the account's (``upload.per_account``) are free, it starts a
  worker on the account's next due item (``schedule.due_uploads``). Accounts take turns: each pass
  starts with the account after the one served first last time, so no account starves another.
  A worker's trip ends once TikTok holds every byte: the item stays ``processing`` with its next
  status check in ``next_attempt_at``, and the worker is free for the next upload.
- the poll lane: one thread asks TikTok about every processing item whose check is due
  (``schedule.due_polls``), one status call each, paced by the ledger (``tiktok.status_per_minute``).

A worker builds its own pipeline (store connection, HTTP sessions) once per thread. A worker that
dies of an exception the pipeline did not handle holds its item back, doubling the wait from one
crash to the next, so a bug or a damaged database gives a crash now and then, not several a second;
``status`` shows the item's next try and why. ``next_wakeup`` tells the main loop when something
falls due, so it sleeps until then (or until a worker finishes, or a file arrives).
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from typing import Protocol

from watchfolder.config.settings import Settings
from watchfolder.core.errors import StoreError
from watchfolder.core.model import Item
from watchfolder.daemon.pipeline import Pipeline
from watchfolder.daemon.stopping import StopEvent
from watchfolder.logs import Logger
from watchfolder.store import queries, schedule
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenStore

SIGN_IN_LOOK_SECONDS = 1.0   # how often an account waiting for a sign-in looks at its token file
FIRST_CRASH_HOLD = 30.0   # seconds an item waits after its worker crashed (at most upload.retry_initial)


class Schedule(Protocol):
    """What the main loop asks of a scheduler; ``wiring.build`` chooses which one runs."""

    def step(self, now: float) -> None:
        """Collect finished work and start what is due; called on every pass of the main loop."""
        ...

    def next_wakeup(self, now: float) -> float | None:
        """When the next item or account wait falls due (None: nothing is scheduled)."""
        ...

    def shutdown(self) -> None:
        """The stop flag is set: wait for the work under way to checkpoint, start nothing new."""
        ...

    def ended(self) -> list[int]:
        """The items whose work ended since the last call and may wait for their move (a worker that moved its
        item, or left it unfinished, is not named)."""
        ...


class Scheduler:
    """Starts workers for due items. Used by the main loop's thread only (``step``, ``shutdown``)."""

    def __init__(self, *, settings: Settings, store: Store, token_store: TokenStore,
                 make_pipeline: Callable[[], Pipeline], stop: StopEvent, log: Logger) -> None:
        self.settings = settings
        self.store = store
        self.token_store = token_store
        self.make_pipeline = make_pipeline
        self.stop = stop
        self.log = log
        self.accounts = [account.name for account in settings.accounts]
        self.modes = {account.name: str(account.mode) for account in settings.accounts}
        self.workers = settings.upload.workers
        self.per_account = settings.upload.per_account
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="upload")
        self.poller = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="poll")
        self.uploads: dict[int, tuple[str, concurrent.futures.Future[bool]]] = {}   # item id → account, work
        self.polls: dict[int, tuple[str, concurrent.futures.Future[bool]]] = {}
        self.crashes: dict[int, int] = {}           # item id → crashes in a row
        self.held: dict[int, float] = {}            # item id → not before (also in the store when it takes writes)
        self._ended: list[int] = []
        self.turn = 0                               # the account served first on the next pass
        # What this pass read of the accounts and the app-wide wait (step), reused by next_wakeup at the
        # same ``now``: one read of each per pass, however many accounts.
        self._pass: tuple[float, dict[str, schedule.Hold | None], float | None] | None = None
        # TikTok's app-wide wait as last read: only a worker's trip writes it, and then tells (on_app_wait),
        # so it is read again after that, not on every pass.
        self._app_until: float | None = None
        self._app_read = False
        self._local = threading.local()

    # ---- the main loop's side ------------------------------------------------------------------

    def step(self, now: float) -> None:
        self._reap(self.uploads, now)
        self._reap(self.polls, now)
        # What TikTok is processing is asked about whatever holds new uploads back (caps, pauses).
        if self.accounts:
            for item in schedule.due_polls(self.store, self.accounts, now, self.polls.keys() | self.uploads.keys()):
                if self.held.get(item.id, 0) > now:
                    continue
                future = self.poller.submit(self._work, item.id, item)
                self.polls[item.id] = (item.account, future)
                future.add_done_callback(self._worker_done)
        holds = self._holds(now)
        wait = self._app_wait(now)
        self._pass = (now, holds, wait)
        if wait is not None:
            return
        self._start_uploads([name for name in self._in_turn() if holds[name] is None], now)

    def _app_wait(self, now: float) -> float | None:
        """Until when TikTok asked the whole app to wait (None: it does not)."""
        if not self._app_read:
            app_wait = self.store.runtime("app_wait")
            self._app_until = float(app_wait[0].get("until", 0)) if app_wait else None
            self._app_read = True
        return self._app_until if self._app_until is not None and self._app_until > now else None

    def _in_turn(self) -> list[str]:
        names = self.accounts
        start = self.turn % len(names) if names else 0
        return names[start:] + names[:start]

    def _start_uploads(self, ready: list[str], now: float) -> None:
        busy: dict[str, int] = {}
        for account, _future in self.uploads.values():
            busy[account] = busy.get(account, 0) + 1
        served_first: str | None = None
        for name in ready:
            free = min(self.per_account - busy.get(name, 0), self.workers - len(self.uploads))
            if free <= 0:
                continue
            exclude = self.uploads.keys() | self.polls.keys() | {i for i, t in self.held.items() if t > now}
            for item in schedule.due_uploads(self.store, name, now, exclude, free):
                future = self.pool.submit(self._work, item.id, item)
                self.uploads[item.id] = (name, future)
                future.add_done_callback(self._worker_done)
                served_first = served_first or name
        if served_first is not None:
            self.turn = self.accounts.index(served_first) + 1

    def next_wakeup(self, now: float) -> float | None:
        """The earliest future time an item's next try or an account's wait falls due."""
        times = [schedule.next_due_at(self.store, self.accounts, now)] if self.accounts else []
        holds, wait = (self._pass[1], self._pass[2]) if self._pass and self._pass[0] == now else \
            (self._holds(now), self._app_wait(now))
        for name in self.accounts:
            hold = holds[name]
            if hold is not None and hold.reason == "sign_in":
                times.append(now + SIGN_IN_LOOK_SECONDS)   # new tokens come as a file, not a commit: look again
            else:
                times.append(hold.until if hold is not None else None)
        times += [until for until in self.held.values() if until > now]
        times.append(wait)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def shutdown(self) -> None:
        """Let every worker checkpoint and return (the stop flag is set); start no new one."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.poller.shutdown(wait=True, cancel_futures=True)
        self.uploads.clear()
        self.polls.clear()

    def ended(self) -> list[int]:
        ended, self._ended = self._ended, []
        return ended

    def _reap(self, running: dict[int, tuple[str, concurrent.futures.Future[bool]]], now: float) -> None:
        for item_id, (account, future) in list(running.items()):
            if not future.done():
                continue
            del running[item_id]
            error = None if future.cancelled() else future.exception()
            if error is None:
                self.crashes.pop(item_id, None)
                self.held.pop(item_id, None)
                if future.cancelled() or not future.result():
                    self._ended.append(item_id)
                continue
            self._ended.append(item_id)
            self._hold(account, item_id, error, now)

    def _hold(self, account: str, item_id: int, error: BaseException, now: float) -> None:
        count = self.crashes.get(item_id, 0) + 1
        self.crashes[item_id] = count
        upload = self.settings.upload
        delay = min(min(FIRST_CRASH_HOLD, upload.retry_initial_seconds) * 2 ** min(count - 1, 30),
                    upload.retry_max_seconds)
        until = now + delay
        self.held[item_id] = until
        what = f"{type(error).__name__}: {error}"
        self.log.error("worker_crashed", account=account, item_id=item_id, error=what, crashes=count,
                       retry_in_seconds=round(delay, 1))
        try:
            queries.hold_item(self.store, item_id, until, f"the worker stopped on an error ({what}); "
                              f"tried again in {delay:.0f} s", now)
        except (sqlite3.Error, StoreError) as exc:
            self.log.error("worker_crash_not_recorded", item_id=item_id, error=f"{type(exc).__name__}: {exc}")

    def _worker_done(self, future: concurrent.futures.Future[bool]) -> None:
        """Wake the main loop when a worker has ended: its account's next item starts at once, and a
        crashed worker's item is held back (``_hold``, growing each time), so a bug that crashes every
        item does not become a busy loop."""
        self.stop.wake.set()

    def _holds(self, now: float) -> dict[str, schedule.Hold | None]:
        """What holds each account's new uploads back now (None: nothing), the accounts read in one query.
        An account waiting for a sign-in whose token file changed is resumed here."""
        states = schedule.account_states(self.store, self.accounts)
        holds: dict[str, schedule.Hold | None] = {}
        for account in self.accounts:
            state = states[account]
            if state.paused_code == "sign_in":
                stamp = self.token_store.stamp(account)   # a damaged file reads as None: still paused
                if stamp is not None and stamp != state.paused_tokens_at:
                    state = self.store.set_account_state(account, paused_code=None, paused_message=None,
                                                         paused_tokens_at=None)
                    self.log.info("account_resumed", account=account, reason="new tokens")
                    queries.clear_sign_in_waits(self.store, account, now)
            holds[account] = schedule.account_hold(self.store, account, self.modes[account], now, state=state,
                                                   cap=self.settings.daily_cap(self.modes[account]))
        return holds

    # ---- a worker thread's side ----------------------------------------------------------------

    def _app_wait_changed(self) -> None:
        """A worker wrote TikTok's app-wide wait: the next pass reads it (a flag set from the worker's thread)."""
        self._app_read = False

    def _work(self, item_id: int, item: Item | None = None) -> bool:
        """Run one item (``item``: its row as the due query just read it) with this thread's own pipeline
        (its own store connection and HTTP sessions); return True when its trip ended with the item all
        there (not finished, or moved with its sidecar)."""
        try:
            pipeline = getattr(self._local, "pipeline", None)
            if pipeline is None:
                pipeline = self._local.pipeline = self.make_pipeline()
                pipeline.on_app_wait = self._app_wait_changed
            return pipeline.run(item_id, item)
        except Exception as exc:
            self.log.exception("worker_failed", item_id=item_id, error=f"{type(exc).__name__}: {exc}")
            raise
