"""Watching the account inboxes: watchdog observers that only report names, supervised so they survive a NAS.

Each account's inbox gets its own observer (inotify on a local disk, polling on a network share; see
``fsinfo.choose_observer``). The watchdog handler does one thing: put ``WatchEvent(account, name)``
on a queue, where ``name`` is the top-level entry of the inbox that the event touched. Everything
else (is it finished, what is it) is decided by intake on the main loop's thread.

Events are hints, not the truth: inotify overflows are dropped silently by watchdog, a polling
emitter stops for good when a share goes away, and files present at start are never reported. So
the main loop calls ``scan()`` once after ``start()``, and ``tick(now)`` about every second, which
restarts dead observers (with backoff), notices inboxes that appear or vanish, and rescans every
``rescan_seconds`` as a safety net.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from watchdog import events as wd
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingEmitter, PollingObserver

from watchfolder import fsinfo
from watchfolder.intake.ignore import is_ignored

# Left out on purpose: opened and closed-without-writing, which our own reading (sniffing, hashing,
# uploading) produces and which would wake intake for every file it reads; and a folder's "modified",
# which only echoes a change to an entry inside it that has an event of its own (and would turn a
# .DS_Store written into a photo folder into an event for that folder).
REPORTED_EVENTS: tuple[type[wd.FileSystemEvent], ...] = (
    wd.FileCreatedEvent, wd.DirCreatedEvent, wd.FileModifiedEvent, wd.FileMovedEvent, wd.DirMovedEvent,
    wd.FileDeletedEvent, wd.DirDeletedEvent, wd.FileClosedEvent, wd.FileAttribEvent, wd.DirAttribEvent,
)

MAX_BACKOFF = 60.0      # seconds between restart attempts, at most
HEALTHY_RESET = 60.0    # an observer alive this long has its restart backoff forgotten
JOIN_SECONDS = 2.0      # how long stop() waits for the observer threads in total


@dataclass(frozen=True)
class WatchEvent:
    """Something happened to the top-level entry ``name`` of ``account``'s inbox (look at it again)."""

    account: str
    name: str


@dataclass
class InboxHealth:
    """How one inbox is watched, for ``status``, ``check`` and /healthz.

    ``method`` is "inotify" or "polling" ("" before the first start); ``available`` is False while
    the inbox folder is missing or unreadable; ``alive`` is True while its observer threads run.
    """

    account: str
    path: Path
    method: str
    reason: str
    available: bool
    alive: bool
    message: str
    restarts: int


class LstatPollingObserver(PollingObserver):
    """watchdog's PollingObserver, taking its snapshots with ``lstat`` and skipping ignored names.

    The stock one uses ``stat``, which follows a symlink in the inbox: a link to ``/`` would make every
    poll walk the whole machine, and a link loop would recurse until the emitter dies. Skipping junk
    folders (``@eaDir``, ``#recycle``) spares a stat of every file in them on every poll of a share.
    """

    def __init__(self, *, timeout: float, ignore_globs: Sequence[str] = ()) -> None:
        globs = tuple(ignore_globs)

        def listdir(path: str | None) -> list[os.DirEntry[str]]:
            with os.scandir(path) as listing:
                return [entry for entry in listing if not is_ignored(entry.name, globs)]

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
                 post: Callable[[WatchEvent], None], log: Any) -> None:
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
        except Exception:
            try:
                self.log.exception("watch_event_failed", account=self.account)
            except Exception:  # noqa: S110 - a broken log sink must not kill the dispatch thread either
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


@dataclass
class _Slot:
    """The watcher's book-keeping for one inbox."""

    account: str
    path: Path
    watch_path: str
    method: str = ""
    reason: str = ""
    available: bool = False
    message: str = "not started"
    starts: int = 0
    restarts: int = 0
    failures: int = 0                          # consecutive deaths or failed starts, for the backoff
    retry_at: float | None = None              # no start attempt before this time
    healthy_since: float | None = None
    identity: tuple[int, int] | None = None    # (st_dev, st_ino) of the inbox when watching began
    forced_polling: str = ""                   # why inotify was given up for this inbox, if it was


class Watcher:
    """One supervised watchdog observer per account inbox, reporting WatchEvents on a queue."""

    def __init__(self, inboxes: Mapping[str, Path], events: queue.Queue[WatchEvent], *,
                 observer: str = "auto", poll_interval: float = 5.0, rescan_seconds: float = 300.0,
                 ignore_globs: Sequence[str] = (), mounts: Sequence[fsinfo.Mount] | None = None,
                 log: Any = None, observer_factory: ObserverFactory | None = None) -> None:
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
        self._slots: dict[str, _Slot] = {}
        self._handlers: dict[str, _InboxHandler] = {}
        self._observers: dict[str, BaseObserver] = {}
        self._last_rescan: float | None = None
        self._overflowed = False
        for account, inbox in inboxes.items():
            watch_path = os.path.abspath(inbox)
            self._slots[account] = _Slot(account, Path(inbox), watch_path)
            self._handlers[account] = _InboxHandler(account, watch_path, self._ignore_globs, self._post, self._log)

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
            for slot in self._slots.values():
                if slot.account not in self._observers:
                    self._start_slot(slot, now=None)

    def stop(self) -> None:
        """Stop every observer and wait for their threads, about JOIN_SECONDS at most in total."""
        with self._lock:
            observers = list(self._observers.values())
            self._observers.clear()
            for slot in self._slots.values():
                slot.message = "stopped"
        for observer in observers:
            _quietly(observer.stop)
        deadline = time.monotonic() + JOIN_SECONDS
        for observer in observers:
            _quietly(observer.join, max(0.0, deadline - time.monotonic()))

    def _start_slot(self, slot: _Slot, now: float | None) -> bool:
        """Start watching one inbox; return True if an observer is running for it afterwards."""
        try:
            info = os.stat(slot.watch_path)
        except OSError as exc:
            self._mark_unavailable(slot, _unavailable_text(exc))
            return False
        if not stat.S_ISDIR(info.st_mode):
            self._mark_unavailable(slot, "the inbox path is not a folder")
            return False
        method, reason = self._choose(slot)
        try:
            observer = self._launch(slot, method)
        except OSError as exc:
            if method != "inotify" or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                self._start_failed(slot, now, f"cannot watch the inbox: {exc}")
                return False
            advice = fsinfo.inotify_limit_advice(exc.errno, fsinfo.inotify_limits())
            # Sticky for this run: the limit is host-wide, and flapping between methods helps nobody.
            slot.forced_polling = f"polled every {self._poll_interval:g} s because {advice}"
            self._log.warning("inotify_limit_reached", account=slot.account, path=slot.watch_path,
                              message=slot.forced_polling)
            method, reason = "polling", slot.forced_polling
            try:
                observer = self._launch(slot, method)
            except OSError as again:
                self._start_failed(slot, now, f"cannot watch the inbox: {again}")
                return False
        self._observers[slot.account] = observer
        slot.identity = (info.st_dev, info.st_ino)
        slot.method, slot.reason = method, reason
        slot.available = True
        slot.message = f"watching with {method}: {reason}"
        slot.retry_at = None
        slot.healthy_since = now
        slot.starts += 1
        if slot.starts == 1:
            self._log.info("observer_started", account=slot.account, path=slot.watch_path,
                           method=method, reason=reason)
        else:
            slot.restarts += 1
            self._log.info("observer_restarted", account=slot.account, path=slot.watch_path,
                           method=method, reason=reason, restarts=slot.restarts)
        return True

    def _choose(self, slot: _Slot) -> tuple[str, str]:
        if slot.forced_polling:
            return "polling", slot.forced_polling
        mounts = self._mounts if self._mounts is not None else fsinfo.read_mounts()
        return fsinfo.choose_observer(self._configured, Path(slot.watch_path), mounts)

    def _launch(self, slot: _Slot, method: str) -> BaseObserver:
        observer = self._factory(method, self._poll_interval)
        try:
            # Recursive, for the images inside photo folders. Only the inbox is watched: done/ and
            # failed/ are its siblings, so neither inotify nor polling ever walks them.
            observer.schedule(self._handlers[slot.account], slot.watch_path, recursive=True,
                              event_filter=list(REPORTED_EVENTS))
            observer.start()
        except BaseException:
            _discard(observer)
            raise
        return observer

    def _start_failed(self, slot: _Slot, now: float | None, text: str) -> None:
        slot.available = True
        slot.failures += 1
        delay = _backoff(slot.failures)
        slot.retry_at = None if now is None else now + delay
        slot.message = f"{text}; trying again in {delay:g} s"
        self._log.warning("observer_start_failed", account=slot.account, path=slot.watch_path, reason=text)

    def _mark_unavailable(self, slot: _Slot, text: str) -> None:
        message = f"unavailable: {text}"
        if slot.available or slot.message != message:
            self._log.warning("inbox_unavailable", account=slot.account, path=slot.watch_path, reason=text)
        slot.available = False
        slot.message = message

    # ---- supervision ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Supervise, given the time (a monotonic clock in seconds); call it about once a second.

        Restarts an observer that died (its thread or an emitter thread stopped) after a backoff of
        1 s doubling to 60 s, and rescans that inbox; restarts at once when the inbox was replaced or
        remounted (other device or inode); marks an inbox unavailable when it vanishes and starts it
        (and rescans it) once it is back; and rescans every inbox every ``rescan_seconds``.
        """
        with self._lock:
            for slot in self._slots.values():
                self._supervise(slot, now)
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

    def _supervise(self, slot: _Slot, now: float) -> None:
        observer = self._observers.get(slot.account)
        if observer is not None:
            problem = self._problem(slot, observer)
            if problem is None:
                if slot.healthy_since is None or now < slot.healthy_since:
                    slot.healthy_since = now
                elif slot.failures and now - slot.healthy_since >= HEALTHY_RESET:
                    slot.failures = 0
                return
            kind, text = problem
            del self._observers[slot.account]
            _discard(observer)
            if kind == "vanished":
                self._mark_unavailable(slot, text)
                return
            self._log.warning("observer_died", account=slot.account, path=slot.watch_path, reason=text)
            if kind == "dead":
                slot.failures += 1
                delay = _backoff(slot.failures)
                slot.retry_at = now + delay
                slot.message = f"observer died ({text}); restarting in {delay:g} s"
                return
            slot.retry_at = None  # replaced or remounted: nothing is broken, watch the new folder now
        if slot.retry_at is not None and now < slot.retry_at:
            return
        if self._start_slot(slot, now):
            self.scan(slot.account)

    def _problem(self, slot: _Slot, observer: BaseObserver) -> tuple[str, str] | None:
        """Return (kind, text) if this inbox's observer needs replacing, else None.

        kind is "vanished" (inbox gone or unreadable), "replaced" (another folder or mount now at the
        path), or "dead" (a thread stopped: the observer, or an emitter, which watchdog's polling
        emitter does on its own when a share goes away while ``observer.is_alive()`` stays True).
        """
        try:
            info = os.stat(slot.watch_path)
        except OSError as exc:
            return "vanished", _unavailable_text(exc)
        if not stat.S_ISDIR(info.st_mode):
            return "vanished", "the inbox path is not a folder"
        if (info.st_dev, info.st_ino) != slot.identity:
            return "replaced", "the inbox folder was replaced or remounted"
        if not observer.is_alive():
            return "dead", "the observer thread stopped"
        if not _emitters_alive(observer):
            return "dead", "its emitter thread stopped"
        return None

    # ---- scanning and health -------------------------------------------------------------------

    def scan(self, account: str | None = None) -> int:
        """Queue a WatchEvent for every top-level, non-ignored entry of one inbox (or all); return how many.

        For the startup scan and the safety-net rescan. A missing or unreadable inbox contributes
        nothing (an unreadable one is logged). Raise KeyError for an unknown account.
        """
        slots = [self._slots[account]] if account is not None else list(self._slots.values())
        count = 0
        for slot in slots:
            try:
                with os.scandir(slot.watch_path) as listing:
                    names = sorted(d.name for d in listing if not is_ignored(d.name, self._ignore_globs))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                self._log.warning("inbox_scan_failed", account=slot.account, path=slot.watch_path,
                                  reason=exc.strerror or str(exc))
                continue
            for name in names:
                self._post(WatchEvent(slot.account, name))
            count += len(names)
        return count

    def health(self) -> list[InboxHealth]:
        """Return how each inbox is watched right now, in the order the inboxes were given."""
        with self._lock:
            report = []
            for slot in self._slots.values():
                observer = self._observers.get(slot.account)
                alive = observer is not None and observer.is_alive() and _emitters_alive(observer)
                report.append(InboxHealth(slot.account, slot.path, slot.method, slot.reason,
                                          slot.available, alive, slot.message, slot.restarts))
            return report


def _emitters_alive(observer: BaseObserver) -> bool:
    """Return True if the observer has emitters and every one of them is running."""
    try:
        emitters = list(observer.emitters)
    except RuntimeError:  # the set changed while being copied: the observer is being stopped
        return False
    return bool(emitters) and all(emitter.is_alive() for emitter in emitters)


def _backoff(failures: int) -> float:
    """1 s after the first failure, doubling with each further one, never above MAX_BACKOFF."""
    return min(MAX_BACKOFF, 2.0 ** max(0, failures - 1))


def _unavailable_text(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return "the inbox folder does not exist (share not mounted?); it is not created, and watched once it appears"
    return f"the inbox cannot be read: {exc.strerror or exc}"


def _discard(observer: BaseObserver) -> None:
    """Stop an observer that failed or died, without letting its clean-up raise or hang for long."""
    _quietly(observer.stop)
    _quietly(observer.join, 1.0)


def _quietly(call: Callable[..., object], *args: object) -> None:
    # Clean-up of a broken observer can raise (a thread never started, a watch already gone);
    # none of that must stop the supervisor.
    try:
        call(*args)
    except Exception:  # noqa: S110 - see above: best-effort clean-up of something already broken
        pass
