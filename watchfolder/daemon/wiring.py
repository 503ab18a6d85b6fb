"""The one builder: ``Settings`` in, a ``Daemon`` whose parts are open and ready out.

Used by ``watchfolder run``, ``watchfolder demo``, the tests' rig and (through ``run``) the
benchmarks. In order: the root must exist; the state directory is prepared and refused when it is
on a network filesystem (unless allowed); the state lock is taken; each account's folders are made;
the store opens (and migrates); tokens, the media host, startup recovery, the observers and their
first scan, intake and the scheduler follow. If any of this fails, what was already opened is closed
and the lock released before the error goes up.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Sequence

from watchfolder import fsinfo, logs
from watchfolder.config.settings import Settings
from watchfolder.core.errors import ConfigError, WatchfolderError
from watchfolder.daemon import recovery
from watchfolder.daemon.hooks import Hook
from watchfolder.daemon.loop import Daemon
from watchfolder.daemon.outbox import ensure_account_folders
from watchfolder.daemon.pacing import Pacer
from watchfolder.daemon.pipeline import Pipeline
from watchfolder.daemon.publisher import Publisher
from watchfolder.daemon.scheduler import Scheduler
from watchfolder.daemon.stopping import StopEvent, WakingQueue
from watchfolder.intake.intake import Intake
from watchfolder.intake.watcher import Watcher, WatchEvent
from watchfolder.mediahost.host import MediaHost
from watchfolder.store import integrity, statelock
from watchfolder.store.store import Store
from watchfolder.tiktok.client import TikTokClient
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import TokenManager, TokenStore
from watchfolder.tiktok.upload import ChunkUploader


def build(settings: Settings, *, clock: Callable[[], float] = time.time, log: logs.Logger | None = None,
          hooks: Sequence[Hook] = (), stop: StopEvent | None = None) -> Daemon:
    """Open everything the daemon needs, in order (see the module docstring); return it ready to ``run``.

    ``stop`` may be made beforehand, so a signal handler installed before the build can set it (the
    daemon then stops as soon as it runs).

    Raise ConfigError (exit 2) for a network state_dir that is not allowed, WatchfolderError for a
    missing root, a taken lock or a store that cannot be opened.
    """
    log = log or logs.get_logger()
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
        log.warning("state_dir_on_network_filesystem", state_dir=str(settings.state_dir), fs_type=fs_type,
                    reason="allow_network_state_dir is set; SQLite locking is not safe there")
    lock = statelock.StateLock(settings.state_dir)
    lock.acquire()
    with contextlib.ExitStack() as undo:
        undo.callback(lock.release)
        inboxes = {}
        for account in settings.accounts:
            ensure_account_folders(settings.root, account.name)
            inboxes[account.name] = settings.root / account.name / "inbox"
        token_store = TokenStore(settings.state_dir)
        token_store.check_permissions()
        store = integrity.open_checked(settings.state_dir)
        undo.callback(store.close)
        oauth = OAuthClient(api_base_url=settings.tiktok.api_base_url, client_key=settings.tiktok.client_key,
                            client_secret=settings.tiktok.client_secret, timeout=settings.tiktok.timeout_seconds)
        tokens = TokenManager(token_store, oauth, margin_seconds=settings.tiktok.refresh_margin_seconds,
                              clock=clock, log=log)
        mediahost = None
        host = settings.media_host
        if host.url_prefix:
            mediahost = MediaHost(url_prefix=host.url_prefix, staging_dir=settings.state_dir / "staging",
                                  serve=host.serve, publish_dir=host.publish_dir)
            mediahost.start()
            undo.callback(mediahost.stop)
        unmoved = recovery.recover(settings, store, clock(), log)
        stop = stop if stop is not None else StopEvent()
        events: queue.Queue[WatchEvent] = WakingQueue(stop.wake)   # a file event wakes the main loop
        watcher = Watcher(inboxes, events, observer=settings.watch.observer,
                          poll_interval=settings.watch.poll_interval, rescan_seconds=settings.watch.rescan_seconds,
                          ignore_globs=settings.watch.ignore, log=log)
        watcher.start()
        undo.callback(watcher.stop)
        watcher.scan()
        intake = Intake(settings, store, events, log=log)
        make_pipeline = pipeline_factory(settings, tokens=tokens, token_store=token_store, mediahost=mediahost,
                                         clock=clock, stop=stop, log=log)
        scheduler = Scheduler(settings=settings, store=store, token_store=token_store, make_pipeline=make_pipeline,
                              stop=stop, log=log)
        daemon = Daemon(settings=settings, clock=clock, log=log, stop=stop, lock=lock, store=store,
                        token_store=token_store, tokens=tokens, mediahost=mediahost, events=events, watcher=watcher,
                        intake=intake, scheduler=scheduler, hooks=hooks, unmoved=unmoved)
        undo.pop_all()   # the daemon owns them now: Daemon.close releases them
    log.info("daemon_ready", accounts=[a.name for a in settings.accounts], root=str(settings.root))
    return daemon


def pipeline_factory(settings: Settings, *, tokens: TokenManager, token_store: TokenStore,
                     mediahost: MediaHost | None, clock: Callable[[], float], stop: StopEvent,
                     log: logs.Logger) -> Callable[[], Pipeline]:
    """Return what builds a worker thread's pipeline: its own store connection, pacer and HTTP sessions."""

    def make() -> Pipeline:
        store = Store(settings.state_dir)
        tiktok = settings.tiktok
        pacer = Pacer(store, {"init": tiktok.init_per_minute, "status": tiktok.status_per_minute,
                              "creator_info": tiktok.creator_info_per_minute}, clock, stop)
        publisher = Publisher(settings=settings, tokens=tokens, token_store=token_store,
                              client=TikTokClient(tiktok.api_base_url, timeout=tiktok.timeout_seconds),
                              uploader=ChunkUploader(timeout=tiktok.timeout_seconds), pacer=pacer,
                              mediahost=mediahost, clock=clock)
        return Pipeline(settings=settings, store=store, publisher=publisher, pacer=pacer, clock=clock,
                        stop=stop, log=log)

    return make
