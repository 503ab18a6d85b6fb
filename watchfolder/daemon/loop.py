"""The main loop: one thread that takes files in, finishes moves, schedules workers and calls the hooks.

``wiring.build`` makes a ``Daemon`` whose parts are open and ready; ``run`` loops until the stop
flag is set, then lets each worker checkpoint its chunk in flight, closes everything and returns 0.
Signal handlers only set the stop flag.

A step of a pass that fails on the state disk (SQLite "database or disk is full", an I/O error)
does not end the loop: the error is logged when it starts and when it changes, the hooks see it
through ``troubles()`` (``/healthz`` answers 503 and says why), and the step runs again on the next
pass, so the daemon carries on by itself once space is back.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from watchfolder.config.settings import Settings
from watchfolder.core.errors import StoreError, WatchfolderError
from watchfolder.daemon import finish
from watchfolder.daemon.hooks import Hook
from watchfolder.daemon.scheduler import Schedule
from watchfolder.daemon.stopping import StopEvent
from watchfolder.intake.intake import Intake
from watchfolder.intake.supervisor import InboxHealth
from watchfolder.intake.watcher import Watcher, WatchEvent
from watchfolder.logs import Logger
from watchfolder.mediahost.host import MediaHost
from watchfolder.store import queries, statelock
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenManager, TokenStore

LOOK_SECONDS = 1.0         # the longest sleep: then one read (PRAGMA data_version) sees what other processes
                           # committed (pause, resume, retry), and the hooks run (watchdog pings)
FINISH_RETRY_SECONDS = 30  # how often a move that failed on a disk error is tried again (and a full pass made)
SWEEP_SECONDS = 2.0        # how often the media host's staged files are looked over (during a full pass)
EXPIRY_CHECK_SECONDS = 6 * 3600   # how often refresh-token expiry is checked (and warned about)
STATE_TROUBLE = (sqlite3.Error, StoreError, OSError)   # what a full or failing state disk raises


class Daemon:
    """``watchfolder run``, built by ``wiring.build``. Its attributes are set once, before ``run``."""

    def __init__(self, *, settings: Settings, clock: Callable[[], float], log: Logger, stop: StopEvent,
                 lock: statelock.StateLock, store: Store, token_store: TokenStore, tokens: TokenManager,
                 mediahost: MediaHost | None, events: queue.Queue[WatchEvent], watcher: Watcher, intake: Intake,
                 scheduler: Schedule, hooks: Sequence[Hook] = (), unmoved: Iterable[int] = ()) -> None:
        self.settings = settings
        self.clock = clock
        self.log = log
        self.stop = stop
        self.lock = lock
        self.store = store
        self.token_store = token_store
        self.tokens = tokens
        self.mediahost = mediahost
        self.events = events
        self.watcher = watcher
        self.intake = intake
        self.scheduler = scheduler
        self.hooks = list(hooks)
        self.view = View(self)
        self.ready = threading.Event()   # set after the first pass: hooks told, live state published
        self.loop_at = 0.0
        self.expiry_warnings: list[str] = []
        self._troubles: dict[str, str] = {}
        self._unmoved = set(unmoved)   # finished items whose move is still to be made (a full or read-only disk)
        self._published: dict[str, Any] | None = None
        self._closed = False

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until the stop flag is set; close everything; return the exit code (0 after a clean stop)."""
        try:
            for hook in self.hooks:
                hook.on_ready(self.view)
            last_finish = last_sweep = last_expiry = float("-inf")
            due: float | None = None
            version = None
            woken = True
            while not self.stop.is_set():
                now = self.clock()
                self.loop_at = time.monotonic()
                seen = self._step("look for changes", self._data_version)
                quiet = not woken and seen == version and (due is None or now < due) \
                    and now - last_finish < FINISH_RETRY_SECONDS and not self._troubles   # a failed step goes again
                version = seen
                if quiet:
                    # Nothing arrived, nothing is due, nobody committed: a look (observers, hooks), no write.
                    self._step("watch the inboxes", self.watcher.tick, now)
                    for hook in self.hooks:
                        self._step(f"run {type(hook).__name__}", hook.on_tick, self.view, now)
                    woken = self.stop.wake.wait(self._sleep_for(now, due))
                    self.stop.wake.clear()
                    continue
                self._step("take in files", self.intake.step, now)
                self._step("watch the inboxes", self.watcher.tick, now)
                self._step("schedule uploads", self.scheduler.step, now)
                fresh = self._step("look for finished items", self._newly_finished) or set()
                if fresh:
                    self._step("finish moves", self._finish_moves, fresh, now)
                if now - last_finish >= FINISH_RETRY_SECONDS:
                    last_finish = now
                    self._step("finish moves", self._finish_moves, set(self._unmoved), now)
                self._step("record its live state", self.publish_runtime, now)   # written only when changed
                if now - last_sweep >= SWEEP_SECONDS:
                    last_sweep = now
                    if self.mediahost is not None:
                        self._step("sweep the media host", self.mediahost.sweep, now)
                if now - last_expiry >= EXPIRY_CHECK_SECONDS:
                    last_expiry = now
                    self.expiry_warnings = self.check_expiry()
                for hook in self.hooks:
                    self._step(f"run {type(hook).__name__}", hook.on_tick, self.view, now)
                due = self._next_due(now)
                version = self._step("look for changes", self._data_version)   # our own writes of this pass
                self.ready.set()
                woken = self.stop.wake.wait(self._sleep_for(now, due))
                self.stop.wake.clear()   # a worker finishing after this is seen by the next pass
        finally:
            self.stop.set()
            self.scheduler.shutdown()
            for hook in self.hooks:
                hook.on_stop(self.view)
            self.close()
        self.log.info("daemon_stopped")
        return 0

    def close(self) -> None:
        """Stop the workers, the observers and the media host; close the store; release the lock."""
        if self._closed:
            return
        self._closed = True
        self.stop.set()
        self.scheduler.shutdown()
        self.watcher.stop()
        if self.mediahost is not None:
            self.mediahost.stop()
        self.store.close()
        self.lock.release()

    def _step(self, what: str, action: Callable[..., Any], *args: Any) -> Any:
        """Run one step of a pass; on a state-disk error, note it (see the module docstring) and go on."""
        try:
            result = action(*args)
        except STATE_TROUBLE as exc:
            message = _cause(exc)
            if self._troubles.get(what) != message:
                self.log.error("loop_step_failed", step=what, error=message)
                self._troubles = {**self._troubles, what: message}   # a new dict: other threads read it
            return None
        if what in self._troubles:
            self._troubles = {key: value for key, value in self._troubles.items() if key != what}
            self.log.info("loop_step_recovered", step=what)
        return result

    def troubles(self) -> dict[str, str]:
        return self._troubles

    @property
    def _accounts(self) -> list[str]:
        return [account.name for account in self.settings.accounts]

    def _newly_finished(self) -> set[int]:
        """Items that may wait for their move and were not known to: those whose worker just ended (it
        moves its item itself, unless the disk refused) and those intake refused (failed/ at once)."""
        fresh = set(self.scheduler.ended()) | set(queries.refused_in_inbox(self.store, self._accounts))
        fresh -= self._unmoved
        self._unmoved |= fresh
        return fresh

    def _finish_moves(self, item_ids: set[int], now: float) -> None:
        """Move each of these items to done/ or failed/ if it is finished and still in place; forget the
        ones that are all there (or not finished after all). No scan of the items table."""
        for item_id in sorted(item_ids):
            if finish.finish(self.settings.root, self.store, item_id, now, self.log):
                self._unmoved.discard(item_id)

    def _next_due(self, now: float) -> float | None:
        """The earliest time something falls due: a settling entry, an item's next try, an account's wait."""
        times = [self.intake.next_wakeup(), self._step("plan the next wake", self.scheduler.next_wakeup, now)]
        return min((t for t in times if t is not None), default=None)

    def _sleep_for(self, now: float, due: float | None) -> float:
        if due is None:
            return LOOK_SECONDS
        return max(0.01, min(LOOK_SECONDS, due - now))

    def _data_version(self) -> int:
        """SQLite's count of commits by other connections (the workers', other processes'): a read, no write."""
        return int(self.store.conn.execute("PRAGMA data_version").fetchone()[0])

    def check_expiry(self) -> list[str]:
        """Log (and return) a warning for each refresh token expiring within tiktok.refresh_warn_days."""
        try:
            return self.tokens.expiry_warnings(self.settings.tiktok.refresh_warn_days * 86400)
        except WatchfolderError as exc:
            self.log.warning("token_expiry_check_failed", error=str(exc))
            return []

    def publish_runtime(self, now: float) -> None:
        """Write the live state `status` reads (pid, observers, notices) when it changed: with nothing
        happening, nothing is written (whether the daemon runs, `status` learns from its lock)."""
        health = [
            {"account": h.account, "method": h.method, "available": h.available, "alive": h.alive,
             "message": h.message}
            for h in self.watcher.health()
        ]
        live = {"pid": os.getpid(), "observers": health, "notices": self.intake.waiting_entries(now)}
        if live != self._published:
            self.store.set_runtime("daemon", live, now)
            self._published = live


def _cause(exc: BaseException) -> str:
    """The error as /healthz and the log show it: its class and SQLite's (or the kernel's) words."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


class View:
    """The read-only face of a ``Daemon`` its hooks get (see ``hooks.DaemonView``)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._state = queries.Reader(daemon.store, [account.name for account in daemon.settings.accounts])

    @property
    def settings(self) -> Settings:
        return self._daemon.settings

    @property
    def clock(self) -> Callable[[], float]:
        return self._daemon.clock

    @property
    def log(self) -> Any:
        return self._daemon.log

    @property
    def stop(self) -> threading.Event:
        return self._daemon.stop

    @property
    def loop_at(self) -> float:
        return self._daemon.loop_at

    @property
    def state(self) -> queries.Reader:
        return self._state

    @property
    def token_store(self) -> TokenStore:
        return self._daemon.token_store

    def inboxes(self) -> list[InboxHealth]:
        return self._daemon.watcher.health()

    def troubles(self) -> dict[str, str]:
        return self._daemon.troubles()
