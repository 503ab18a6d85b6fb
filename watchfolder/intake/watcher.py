"""Watching the account inboxes: watchdog observers that only report names, supervised so they survive a NAS.

Each account's inbox gets its own observer (inotify on a local disk, polling on a network share; see
``fsinfo.choose_observer``). The watchdog handler does one thing: put ``WatchEvent(account, name)``
on a queue, where ``name`` is the top-level entry of the inbox that the event touched. Everything
else (is it finished, what is it) is decided by intake on the main loop's thread.

Events are hints, not the truth: inotify overflows are dropped silently by watchdog, a polling
emitter stops for good when a share goes away, and files present at start are never reported. So
the main loop calls ``scan()`` once after ``start()``, and ``tick(now)`` about every second, which
restarts dead observers (with backoff), notices inboxes that appear or vanish, and rescans every
``rescan_seconds`` as a safety net. Keeping each observer alive is ``supervisor.InboxSupervisor``'s job.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import structlog
from watchdog import events as wd
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingEmitter, PollingObserver

from watchfolder import fsinfo
from watchfolder.intake.ignore import is_ignored
from watchfolder.intake.supervisor import (
    InboxHealth,
    InboxSupervisor,
    discard,
    quietly,
)
from watchfolder.logs import Logger

# Left out on purpose: opened and closed-without-writing, which our own reading (sniffing, hashing,
# uploading) produces and which would wake intake for every file it reads; and a folder's "modified",
# which only echoes a change to an entry inside it that has an event of its own (and would turn a
# .DS_Store written into a photo folder into an event for that folder).
REPORTED_EVENTS: tuple[type[wd.FileSystemEvent], ...] = (
    wd.FileCreatedEvent, wd.DirCreatedEvent, wd.FileModifiedEvent, wd.FileMovedEvent, wd.DirMovedEvent,
    wd.FileDeletedEvent, wd.DirDeletedEvent, wd.FileClosedEvent, wd.FileAttribEvent, wd.DirAttribEvent,
)

JOIN_SECONDS = 2.0      # how long stop() waits for the observer threads in total


@dataclass(frozen=True)
class WatchEvent:
    """Something happened to the top-level entry ``name`` of ``account``'s inbox (look at it again)."""

    account: str
    name: str


class LstatPollingObserver(PollingObserver):
    """watchdog's PollingObserver, taking its snapshots with ``lstat`` and skipping ignored names.

    The stock one uses ``stat``, which follows a symlink in the inbox: a link to ``/`` would make every
    poll walk the whole machine, and a link loop would recurse until the emitter dies. Skipping junk
    folders (``@eaDir``, ``#recycle``) spares a stat of every file in them on every poll of a share.
    """

    def __init__(self, *, timeout: float, ignore_globs: Sequence[str] = ()) -> None:
        globs = tuple(ignore_globs)

        def listdir(path: str | None) -> Iterator[os.DirEntry[str]]:
            with os.scandir(path) as listing:
                return iter([entry for entry in listing if not is_ignored(entry.name, globs)])

        emitter = partial(PollingEmitter, stat=os.lstat, listdir=listdir)
        BaseObserver.__init__(self, emitter, timeout=timeout)  # type: ignore[arg-type]


ObserverFactory = Callable[[str, float], BaseObserver]


def make_observer(method: str, poll_interval: float, ignore_globs: Sequence[str] = ()) -> BaseObserver:
    """Given "inotify" or "polling", the poll interval and the ignore globs, return a new, unstarted observer.

    Raise OSError (EMFILE) when no inotify instance can be created; ENOSPC for the watches
    themselves surfaces later, from ``start()``.
    """
    if method == "inotify":
        from watchdog.observers.inotify import InotifyObserver  # Linux only, so imported on demand

        return InotifyObserver()
    return LstatPollingObserver(timeout=poll_interval, ignore_globs=ignore_globs)


class _InboxHandler(wd.FileSystemEventHandler):
    """Turns watchdog events under one inbox into WatchEvents. Runs on watchdog's dispatch thread."""

    def __init__(self, account: str, inbox: str, ignore_globs: Sequence[str],
                 post: Callable[[WatchEvent], None], log: Logger) -> None:
        super().__init__()
        self.account = account
        self.prefix = inbox.rstrip(os.sep) + os.sep
        self.ignore_globs = tuple(ignore_globs)
        self.post = post
        self.log = log

    def dispatch(self, event: wd.FileSystemEvent) -> None:
        # An exception escaping here kills watchdog's dispatch thread, and with it every later event.
        try:
            if not isinstance(event, REPORTED_EVENTS):
                return
            # For a move both count: the old name changed (it is gone) and the new name arrived.
            for path in (event.src_path, event.dest_path) if event.dest_path else (event.src_path,):
                name = self.top_level_name(path)
                if name is not None:
                    self.post(WatchEvent(self.account, name))
        except Exception:  # noqa: BLE001 - see above: whatever it is, log it and keep the thread
            try:
                self.log.exception("watch_event_failed", account=self.account)
            except Exception:  # noqa: BLE001, S110 - a broken log sink must not kill the dispatch thread either
                pass

    def top_level_name(self, path: str | bytes) -> str | None:
        """Given an event path, return the top-level inbox entry it is under, or None to report nothing.

        None for the inbox itself, for paths outside it, and for paths with an ignored name anywhere
        on the way (``@eaDir/x@SynoEAStream``, ``trip/.DS_Store``, ``clip.mp4.part``).
        """
        text = os.fsdecode(path)
        if not text.startswith(self.prefix):
            return None
        parts = text[len(self.prefix):].split(os.sep)
        if not parts[0] or any(is_ignored(part, self.ignore_globs) for part in parts):
            return None
        return parts[0]


class Watcher:
    """One supervised watchdog observer per account inbox, reporting WatchEvents on a queue."""

    def __init__(self, inboxes: Mapping[str, Path], events: queue.Queue[WatchEvent], *,
                 observer: str = "auto", poll_interval: float = 5.0, rescan_seconds: float = 300.0,
                 ignore_globs: Sequence[str] = (), mounts: Sequence[fsinfo.Mount] | None = None,
                 log: Logger | None = None, observer_factory: ObserverFactory | None = None) -> None:
        """Given account → inbox folder, the queue to fill and the ``watch:`` settings, return an idle watcher.

        ``mounts`` fixes the mount table (tests); by default it is read again at every observer start,
        so a share mounted later is recognised. ``observer_factory(method, poll_interval)`` makes the
        unstarted observers (a seam for tests; default ``make_observer`` with the ignore globs).
        Raise ValueError for an unknown ``observer`` value.
        """
        if observer not in fsinfo.OBSERVER_CHOICES:
            raise ValueError(f"observer must be one of {', '.join(fsinfo.OBSERVER_CHOICES)}, got {observer!r}")
        self._events = events
        self._configured = observer
        self._poll_interval = float(poll_interval)
        self._rescan_seconds = float(rescan_seconds)
        self._ignore_globs = tuple(ignore_globs)
        self._mounts = list(mounts) if mounts is not None else None
        self._log = log if log is not None else structlog.get_logger("watchfolder.watcher")
        self._factory = observer_factory or partial(make_observer, ignore_globs=self._ignore_globs)
        self._lock = threading.RLock()  # health() may be called from the metrics thread
        self._inboxes: dict[str, InboxSupervisor] = {}
        self._last_rescan: float | None = None
        self._overflowed = False
        for account, inbox in inboxes.items():
            handler = _InboxHandler(account, os.path.abspath(inbox), self._ignore_globs, self._post, self._log)
            self._inboxes[account] = InboxSupervisor(
                account, Path(inbox), launch=partial(self._launch, handler, os.path.abspath(inbox)),
                choose=self._choose, poll_interval=self._poll_interval, log=self._log)

    # ---- the queue ---------------------------------------------------------------------------

    def _post(self, event: WatchEvent) -> None:
        """Queue ``event`` unless the identical event is still waiting at the tail of the queue.

        A long copy produces a modify event per write; while intake has not taken the previous copy
        of the same event, another adds nothing but queue length.
        """
        mutex = getattr(self._events, "mutex", None)
        pending = getattr(self._events, "queue", None)
        if mutex is not None and pending is not None:
            with mutex:
                if pending and pending[-1] == event:
                    return
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self._overflowed = True  # a bounded queue filled up: the next tick rescans everything

    # ---- starting and stopping ---------------------------------------------------------------

    def start(self) -> None:
        """Start an observer for every inbox that exists.

        A missing inbox (share not mounted) is not created: it is marked unavailable and started by a
        later ``tick`` once it appears. When inotify runs out of watches or instances (ENOSPC, EMFILE)
        that inbox is polled instead, with a logged message saying how to raise the limit. Call
        ``scan()`` afterwards: observers never report files that were already there.
        """
        with self._lock:
            for inbox in self._inboxes.values():
                if inbox.observer is None:
                    inbox.start(now=None)

    def stop(self) -> None:
        """Stop every observer and wait for their threads, about JOIN_SECONDS at most in total."""
        with self._lock:
            observers = [o for o in (inbox.detach() for inbox in self._inboxes.values()) if o is not None]
        for observer in observers:
            quietly(observer.stop)
        deadline = time.monotonic() + JOIN_SECONDS
        for observer in observers:
            quietly(observer.join, max(0.0, deadline - time.monotonic()))

    def _choose(self, watch_path: str) -> tuple[str, str]:
        mounts = self._mounts if self._mounts is not None else fsinfo.read_mounts()
        return fsinfo.choose_observer(self._configured, Path(watch_path), mounts)

    def _launch(self, handler: _InboxHandler, watch_path: str, method: str) -> BaseObserver:
        """Make, schedule and start an observer for one inbox; raise OSError if it cannot start."""
        observer = self._factory(method, self._poll_interval)
        try:
            # Recursive, for the images inside photo folders. Only the inbox is watched: done/ and
            # failed/ are its siblings, so neither inotify nor polling ever walks them.
            observer.schedule(handler, watch_path, recursive=True, event_filter=list(REPORTED_EVENTS))
            observer.start()
        except BaseException:
            discard(observer)
            raise
        return observer

    # ---- supervision ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Supervise, given the time in seconds (any clock that only moves forward); call it about once a second.

        Restarts an observer that died (its thread or an emitter thread stopped) after a backoff of
        1 s doubling to 60 s, and rescans that inbox; restarts at once when the inbox was replaced or
        remounted (other device or inode); marks an inbox unavailable when it vanishes and starts it
        (and rescans it) once it is back; and rescans every inbox every ``rescan_seconds``.
        """
        with self._lock:
            for account, inbox in self._inboxes.items():
                if inbox.supervise(now):
                    self.scan(account)
            if self._overflowed or self._rescan_due(now):
                self._overflowed = False
                self._last_rescan = now
                self.scan()

    def _rescan_due(self, now: float) -> bool:
        if self._rescan_seconds <= 0:
            return False
        if self._last_rescan is None or now < self._last_rescan:
            self._last_rescan = now  # the startup scan was just done by the caller
            return False
        return now - self._last_rescan >= self._rescan_seconds

    # ---- scanning and health -------------------------------------------------------------------

    def scan(self, account: str | None = None) -> int:
        """Queue a WatchEvent for every top-level, non-ignored entry of one inbox (or all); return how many.

        For the startup scan and the safety-net rescan. A missing or unreadable inbox contributes
        nothing (an unreadable one is logged). Raise KeyError for an unknown account.
        """
        inboxes = [self._inboxes[account]] if account is not None else list(self._inboxes.values())
        count = 0
        for inbox in inboxes:
            try:
                with os.scandir(inbox.watch_path) as listing:
                    names = sorted(d.name for d in listing if not is_ignored(d.name, self._ignore_globs))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                self._log.warning("inbox_scan_failed", account=inbox.account, path=inbox.watch_path,
                                  reason=exc.strerror or str(exc))
                continue
            for name in names:
                self._post(WatchEvent(inbox.account, name))
            count += len(names)
        return count

    def health(self) -> list[InboxHealth]:
        """Return how each inbox is watched right now, in the order the inboxes were given."""
        with self._lock:
            return [inbox.health() for inbox in self._inboxes.values()]

    def observer(self, account: str) -> BaseObserver | None:
        """Return the observer watching ``account``'s inbox now (None while it has none). Raise KeyError if unknown."""
        with self._lock:
            return self._inboxes[account].observer

    @property
    def _observers(self) -> dict[str, BaseObserver]:
        """account → running observer, for tests that stop one under the watcher's feet."""
        with self._lock:
            return {a: i.observer for a, i in self._inboxes.items() if i.observer is not None}
