"""What runs next: each account's next due item, on a small worker pool, one item per account at a time.

The main loop calls ``step(now)`` on every pass. It collects finished workers, then, unless TikTok
asked the whole app to wait, starts a worker for each idle account that is not paused or waiting and
has an item due (``Store.next_due``). A worker builds its own pipeline (store connection, HTTP
sessions) once per thread. A worker that dies of an exception the pipeline did not handle holds its
item back, doubling the wait from one crash to the next, so a bug or a damaged database gives a
crash now and then, not several a second; ``status`` shows the item's next try and why.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from typing import Protocol

from watchfolder.config.settings import Settings
from watchfolder.core.errors import StoreError
from watchfolder.daemon.pipeline import Pipeline
from watchfolder.daemon.stopping import StopEvent
from watchfolder.logs import Logger
from watchfolder.store import queries
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenStore

MAX_WORKERS = 4
FIRST_CRASH_HOLD = 30.0   # seconds an item waits after its worker crashed (at most upload.retry_initial)


class Schedule(Protocol):
    """What the main loop asks of a scheduler; ``wiring.build`` chooses which one runs."""

    def step(self, now: float) -> None:
        """Collect finished work and start what is due; called on every pass of the main loop."""
        ...

    def shutdown(self) -> None:
        """The stop flag is set: wait for the work under way to checkpoint, start nothing new."""
        ...

    def ended(self) -> list[int]:
        """The items whose work ended since the last call (finished, parked, or crashed)."""
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
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(settings.accounts)),
                                                          thread_name_prefix="upload")
        self.active: dict[str, tuple[int, concurrent.futures.Future[None]]] = {}
        self.crashes: dict[int, int] = {}           # item id → crashes in a row
        self.held: dict[int, float] = {}            # item id → not before (also in the store when it takes writes)
        self._ended: list[int] = []
        self._local = threading.local()

    # ---- the main loop's side ------------------------------------------------------------------

    def step(self, now: float) -> None:
        self._reap(now)
        app_wait = self.store.runtime("app_wait")
        if app_wait and app_wait[0].get("until", 0) > now:
            return
        for account in self.settings.accounts:
            name = account.name
            if name in self.active or not self._account_ready(name, now):
                continue
            item = self.store.next_due(name, now)
            if item is None or self.held.get(item.id, 0) > now:
                continue
            future = self.pool.submit(self._work, item.id)
            self.active[name] = (item.id, future)
            future.add_done_callback(self._worker_done)

    def shutdown(self) -> None:
        """Let every worker checkpoint and return (the stop flag is set); start no new one."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.active.clear()

    def ended(self) -> list[int]:
        ended, self._ended = self._ended, []
        return ended

    def _reap(self, now: float) -> None:
        for account, (item_id, future) in list(self.active.items()):
            if not future.done():
                continue
            del self.active[account]
            self._ended.append(item_id)
            error = None if future.cancelled() else future.exception()
            if error is None:
                self.crashes.pop(item_id, None)
                self.held.pop(item_id, None)
                continue
            self._hold(account, item_id, error, now)

    def _hold(self, account: str, item_id: int, error: BaseException, now: float) -> None:
        count = self.crashes.get(item_id, 0) + 1
        self.crashes[item_id] = count
        upload = self.settings.upload
        delay = min(min(FIRST_CRASH_HOLD, upload.retry_initial_seconds) * 2 ** (count - 1), upload.retry_max_seconds)
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

    def _worker_done(self, future: concurrent.futures.Future[None]) -> None:
        """Wake the main loop when a worker has finished its item. A crashed worker waits for the next
        tick instead: a bug that crashes every item must not become a busy loop."""
        if not future.cancelled() and future.exception() is None:
            self.stop.wake.set()

    def _account_ready(self, account: str, now: float) -> bool:
        state = self.store.account_state(account)
        if state.paused_code == "sign_in":
            stamp = self.token_store.stamp(account)   # a damaged file reads as None: still paused
            if stamp is None or stamp == state.paused_tokens_at:
                return False
            self.store.set_account_state(account, paused_code=None, paused_message=None, paused_tokens_at=None)
            self.log.info("account_resumed", account=account, reason="new tokens")
            queries.clear_sign_in_waits(self.store, account, now)
            return True
        return not (state.wait_until and state.wait_until > now)

    # ---- a worker thread's side ----------------------------------------------------------------

    def _work(self, item_id: int) -> None:
        """Run one item with this thread's own pipeline (its own store connection and HTTP sessions)."""
        try:
            pipeline = getattr(self._local, "pipeline", None)
            if pipeline is None:
                pipeline = self._local.pipeline = self.make_pipeline()
            pipeline.run(item_id)
        except Exception as exc:
            self.log.exception("worker_failed", item_id=item_id, error=f"{type(exc).__name__}: {exc}")
            raise
