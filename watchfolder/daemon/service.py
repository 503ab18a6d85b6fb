"""The daemon: wires the parts, runs the main loop, hands each account's next due item to a worker.

One thread (this loop) owns intake and scheduling; uploads run on a small pool, at most one item
per account at a time. Signal handlers only set the stop event; the loop then lets each worker
checkpoint its chunk in flight, and returns 0.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from watchfolder import fsinfo, logs
from watchfolder.config.settings import Settings
from watchfolder.core.errors import ConfigError, WatchfolderError
from watchfolder.core.model import State
from watchfolder.daemon import finish
from watchfolder.daemon.outbox import ensure_account_folders
from watchfolder.daemon.pacing import Pacer
from watchfolder.daemon.pipeline import Pipeline
from watchfolder.daemon.publisher import Publisher
from watchfolder.intake.intake import Intake
from watchfolder.intake.watcher import Watcher, WatchEvent
from watchfolder.mediahost.host import MediaHost
from watchfolder.store import integrity, statelock
from watchfolder.store.store import Store
from watchfolder.tiktok.client import TikTokClient
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import TokenManager, TokenStore
from watchfolder.tiktok.upload import ChunkUploader

LOOP_SECONDS = 0.25        # the main loop's longest sleep when nothing is due
FINISH_RETRY_SECONDS = 30  # how often a move that failed on a disk error is tried again
RUNTIME_SECONDS = 2.0      # how often the daemon publishes its live state for `status`
EXPIRY_CHECK_SECONDS = 6 * 3600   # how often refresh-token expiry is checked (and warned about)
MAX_WORKERS = 4


class StopEvent(threading.Event):
    """The daemon's stop flag. Setting it also sets ``wake``, the event the main loop sleeps on, so a
    stop is seen at once; a finished worker sets ``wake`` alone, so its account's next item starts at
    once instead of at the next tick (with a backlog, that tick was most of each item's time)."""

    def __init__(self) -> None:
        super().__init__()
        self.wake = threading.Event()

    def set(self) -> None:
        super().set()
        self.wake.set()


class Daemon:
    """``watchfolder run``. Construct, then ``run(stop)``; the clock is injectable for tests."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time, log: Any = None,
                 hooks: list[Any] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.log = log or logs.get_logger()
        self.stop = StopEvent()
        self.events: queue.Queue[WatchEvent] = queue.Queue()
        self.hooks = hooks or []   # objects with on_ready(daemon) / on_tick(daemon, now) / on_stop(daemon)
        self.local = threading.local()
        self.active: dict[str, concurrent.futures.Future[Any]] = {}
        self.progress: dict[str, dict[str, Any]] = {}
        self.loop_at = 0.0
        self.lock = statelock.StateLock(settings.state_dir)
        self.store: Store | None = None
        self.watcher: Watcher | None = None
        self.mediahost: MediaHost | None = None
        self.token_store = TokenStore(settings.state_dir)
        self.tokens: TokenManager | None = None
        self.expiry_warnings: list[str] = []

    # ---- start and stop ------------------------------------------------------------------------

    def open(self) -> None:
        """Everything before READY: folders, lock, store, tokens, media host, observers, startup scan."""
        settings = self.settings
        if not settings.root.is_dir():
            raise WatchfolderError(f"root {settings.root} does not exist or is not a folder (is the share "
                                   "mounted?); watchfolder never creates it")
        statelock.prepare_state_dir(settings.state_dir)
        try:
            fs_type = statelock.refuse_network_state(settings.state_dir, allowed=settings.allow_network_state_dir)
        except WatchfolderError as exc:
            # A config choice the user has to change: reported like any bad config value (exit 2).
            raise ConfigError(str(settings.path), [f"at 'state_dir': {exc}"]) from exc
        if fs_type is not None and fsinfo.is_network(fs_type):
            self.log.warning("state_dir_on_network_filesystem", state_dir=str(settings.state_dir), fs_type=fs_type,
                             reason="allow_network_state_dir is set; SQLite locking is not safe there")
        self.lock.acquire()
        inboxes = {}
        for account in settings.accounts:
            ensure_account_folders(settings.root, account.name)
            inboxes[account.name] = settings.root / account.name / "inbox"
        self.token_store.check_permissions()
        self.store = integrity.open_checked(settings.state_dir)
        oauth = OAuthClient(api_base_url=settings.tiktok.api_base_url, client_key=settings.tiktok.client_key,
                            client_secret=settings.tiktok.client_secret, timeout=settings.tiktok.timeout_seconds)
        self.tokens = TokenManager(self.token_store, oauth, margin_seconds=settings.tiktok.refresh_margin_seconds,
                                   clock=self.clock, log=self.log)
        host = settings.media_host
        if host.url_prefix:
            self.mediahost = MediaHost(url_prefix=host.url_prefix, staging_dir=settings.state_dir / "staging",
                                       serve=host.serve, publish_dir=host.publish_dir)
            self.mediahost.start()
        self._recover()
        self.watcher = Watcher(inboxes, self.events, observer=settings.watch.observer,
                               poll_interval=settings.watch.poll_interval,
                               rescan_seconds=settings.watch.rescan_seconds,
                               ignore_globs=settings.watch.ignore, log=self.log)
        self.watcher.start()
        self.watcher.scan()
        self.intake = Intake(settings, self.store, self.events, log=self.log)
        self.log.info("daemon_ready", accounts=[a.name for a in settings.accounts], root=str(settings.root))

    def close(self) -> None:
        self.stop.set()
        for future in list(self.active.values()):
            try:
                future.result(timeout=self.settings.tiktok.timeout_seconds + 5)
            except Exception as exc:  # noqa: BLE001 - already logged by the worker; shutting down regardless
                self.log.error("worker_error_at_stop", error=str(exc))
        if self.watcher is not None:
            self.watcher.stop()
        if self.mediahost is not None:
            self.mediahost.stop()
        if self.store is not None:
            self.store.close()
        self.lock.release()

    def _recover(self) -> None:
        """Finish moves a crash interrupted; unfinished uploads resume through the normal schedule.

        A sidecar a crash cut short is only ever a temp file (it is renamed into place whole): those
        are removed, and the sidecar is written again by ``finish``.
        """
        assert self.store is not None
        now = self.clock()
        for account in self.settings.accounts:
            for folder in ("done", "failed"):
                for leftover in (self.settings.root / account.name / folder).glob(".sidecar-*.tmp"):
                    try:
                        leftover.unlink(missing_ok=True)
                    except OSError:
                        pass  # a read-only folder: finish reports it for that item
        for item in self.store.items(unmoved=True):
            finish.finish(self.settings.root, self.store, item, now, self.log)
        resumed = self.store.items(states=(State.UPLOADING, State.PROCESSING))
        if resumed:
            self.log.info("resuming_items", count=len(resumed), items=[i.id for i in resumed])

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until the stop event is set; return the exit code (0 after a clean stop)."""
        self.open()
        for hook in self.hooks:
            hook.on_ready(self)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(self.settings.accounts)),
                                                     thread_name_prefix="upload")
        last_finish = last_runtime = last_expiry = 0.0
        try:
            while not self.stop.is_set():
                now = self.clock()
                self.loop_at = time.monotonic()
                self.intake.step(now)
                assert self.watcher is not None and self.store is not None
                self.watcher.tick(now)
                if now - last_finish >= FINISH_RETRY_SECONDS or self.intake_recorded_failures():
                    last_finish = now
                    for item in self.store.items(unmoved=True):
                        finish.finish(self.settings.root, self.store, item, now, self.log)
                self._schedule(pool, now)
                if now - last_runtime >= RUNTIME_SECONDS:
                    last_runtime = now
                    self.publish_runtime(now)
                    if self.mediahost is not None:
                        self.mediahost.sweep(now)
                if now - last_expiry >= EXPIRY_CHECK_SECONDS:
                    last_expiry = now
                    self.expiry_warnings = self.check_expiry()
                for hook in self.hooks:
                    hook.on_tick(self, now)
                self.stop.wake.wait(self._sleep_for(now))
                self.stop.wake.clear()   # a worker finishing after this is seen by the next pass
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for hook in self.hooks:
                hook.on_stop(self)
            self.close()
        self.log.info("daemon_stopped")
        return 0

    def check_expiry(self) -> list[str]:
        """Log (and return) a warning for each refresh token expiring within tiktok.refresh_warn_days."""
        assert self.tokens is not None
        try:
            return self.tokens.expiry_warnings(self.settings.tiktok.refresh_warn_days * 86400)
        except WatchfolderError as exc:
            self.log.warning("token_expiry_check_failed", error=str(exc))
            return []

    def intake_recorded_failures(self) -> bool:
        """True when intake refused something since the last finish pass (move it to failed/ at once)."""
        assert self.store is not None
        # Runs on every pass of the loop: naming the accounts lets SQLite use the (account, state) index
        # instead of reading every item ever recorded (a scan of 10,000 items, 4 times a second, was most
        # of the daemon's idle CPU).
        names = [account.name for account in self.settings.accounts]
        row = self.store.conn.execute(
            f"SELECT 1 FROM items WHERE account IN ({', '.join('?' for _ in names)}) AND state = 'failed'"  # noqa: S608
            " AND moved = 0 AND folder = 'inbox' LIMIT 1", names).fetchone()
        return row is not None

    def _sleep_for(self, now: float) -> float:
        wake = self.intake.next_wakeup()
        if wake is None:
            return LOOP_SECONDS
        return max(0.01, min(LOOP_SECONDS, wake - now))

    def _schedule(self, pool: concurrent.futures.ThreadPoolExecutor, now: float) -> None:
        assert self.store is not None
        for account, future in list(self.active.items()):
            if future.done():
                del self.active[account]
                self.progress.pop(account, None)
                error = future.exception()
                if error is not None:
                    self.log.error("worker_crashed", account=account, error=f"{type(error).__name__}: {error}")
        app_wait = self.store.runtime("app_wait")
        if app_wait and app_wait[0].get("until", 0) > now:
            return
        for account in self.settings.accounts:
            name = account.name
            if name in self.active or not self._account_ready(name, now):
                continue
            item = self.store.next_due(name, now)
            if item is None:
                continue
            self.active[name] = pool.submit(self._work, item.id)
            self.active[name].add_done_callback(self._worker_done)

    def _worker_done(self, future: concurrent.futures.Future[Any]) -> None:
        """Wake the main loop when a worker has finished its item. A crashed worker waits for the next
        tick instead: a bug that crashes every item must not become a busy loop."""
        if not future.cancelled() and future.exception() is None:
            self.stop.wake.set()

    def _account_ready(self, account: str, now: float) -> bool:
        assert self.store is not None
        state = self.store.account_state(account)
        if state.paused_code == "sign_in":
            tokens = self.token_store.load(account)
            stamp = tokens.updated_at if tokens else None
            if stamp is None or stamp == state.paused_tokens_at:
                return False
            self.store.set_account_state(account, paused_code=None, paused_message=None, paused_tokens_at=None)
            self.log.info("account_resumed", account=account, reason="new tokens")
            with self.store.transaction() as conn:
                conn.execute("UPDATE items SET next_attempt_at = NULL, detail = NULL WHERE account = ? "
                             "AND wait_reason = 'sign_in'", (account,))
            return True
        return not (state.wait_until and state.wait_until > now)

    def _work(self, item_id: int) -> None:
        """A worker thread: run one item with this thread's own store connection and HTTP connections."""
        pipeline = self._pipeline()
        try:
            pipeline.run(item_id)
        except Exception as exc:
            self.log.exception("worker_failed", item_id=item_id, error=f"{type(exc).__name__}: {exc}")
            raise

    def _pipeline(self) -> Pipeline:
        cached = getattr(self.local, "pipeline", None)
        if cached is not None:
            return cached
        settings = self.settings
        store = Store(settings.state_dir)
        pacer = Pacer(store, {"init": settings.tiktok.init_per_minute, "status": settings.tiktok.status_per_minute,
                              "creator_info": settings.tiktok.creator_info_per_minute}, self.clock, self.stop)
        assert self.tokens is not None
        timeout = settings.tiktok.timeout_seconds
        publisher = Publisher(settings=settings, tokens=self.tokens, token_store=self.token_store,
                              client=TikTokClient(settings.tiktok.api_base_url, timeout=timeout),
                              uploader=ChunkUploader(timeout=settings.tiktok.timeout_seconds), pacer=pacer,
                              mediahost=self.mediahost, clock=self.clock)
        pipeline = Pipeline(settings=settings, store=store, publisher=publisher, pacer=pacer, clock=self.clock,
                            stop=self.stop, log=self.log)
        self.local.pipeline = pipeline
        return pipeline

    def publish_runtime(self, now: float) -> None:
        """Write the live state `status`, /healthz and systemd read (observers, notices, heartbeat)."""
        assert self.store is not None and self.watcher is not None
        health = [
            {"account": h.account, "method": h.method, "available": h.available, "alive": h.alive,
             "message": h.message}
            for h in self.watcher.health()
        ]
        self.store.set_runtime("daemon", {
            "pid": os.getpid(), "heartbeat": now, "observers": health,
            "notices": self.intake.waiting_entries(now),
        }, now)
