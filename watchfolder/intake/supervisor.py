"""Keeping one inbox's observer alive: start it, notice when it died or its folder went away, restart it.

A watchdog observer fails quietly: a polling emitter stops for good when its share goes away while
``observer.is_alive()`` stays True, and an inotify watch keeps following a folder that was replaced by
a remount. So the supervisor checks the threads *and* the folder's identity (device and inode) on every
``supervise(now)``, and restarts with a backoff (1 s doubling to 60 s) when something is wrong. A
missing inbox (share not mounted) is reported, never created, and watched once it appears.

The observer itself is made by a ``launch(method)`` callable from the watcher, which knows the handler
and the queue; this module knows only lifecycles. Not thread-safe on its own: the watcher holds a lock.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.observers.api import BaseObserver

from watchfolder import fsinfo
from watchfolder.logs import Logger

MAX_BACKOFF = 60.0      # seconds between restart attempts, at most
HEALTHY_RESET = 60.0    # an observer alive this long has its restart backoff forgotten


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


Launch = Callable[[str], BaseObserver]           # method → a started observer; raises OSError
Choose = Callable[[str], tuple[str, str]]        # inbox path → (method, reason)


class InboxSupervisor:
    """The observer of one account's inbox and everything needed to keep it running."""

    def __init__(self, account: str, path: Path, *, launch: Launch, choose: Choose, poll_interval: float,
                 log: Logger) -> None:
        """Given the account, its inbox, how to launch and choose observers, return an idle supervisor."""
        self.account = account
        self.path = path
        self.watch_path = os.path.abspath(path)
        self.observer: BaseObserver | None = None
        self._launch = launch
        self._choose = choose
        self._poll_interval = poll_interval
        self._log = log
        self.method = ""
        self.reason = ""
        self.available = False
        self.message = "not started"
        self.starts = 0
        self.restarts = 0
        self.failures = 0                          # consecutive deaths or failed starts, for the backoff
        self.retry_at: float | None = None         # no start attempt before this time
        self.healthy_since: float | None = None
        self.identity: tuple[int, int] | None = None   # (st_dev, st_ino) of the inbox when watching began
        self.forced_polling = ""                   # why inotify was given up for this inbox, if it was

    # ---- starting and stopping ---------------------------------------------------------------

    def start(self, now: float | None) -> bool:
        """Start watching the inbox; return True if an observer runs for it afterwards.

        A missing inbox is marked unavailable (not created). When inotify runs out of watches or
        instances (ENOSPC, EMFILE) the inbox is polled instead, for the rest of the run, with a logged
        message saying how to raise the limit. Other failures are retried after a backoff.
        """
        try:
            info = os.stat(self.watch_path)
        except OSError as exc:
            self._mark_unavailable(unavailable_text(exc))
            return False
        if not stat.S_ISDIR(info.st_mode):
            self._mark_unavailable("the inbox path is not a folder")
            return False
        method, reason = ("polling", self.forced_polling) if self.forced_polling else self._choose(self.watch_path)
        try:
            observer = self._launch(method)
        except OSError as exc:
            if method != "inotify" or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                self._start_failed(now, f"cannot watch the inbox: {exc}")
                return False
            advice = fsinfo.inotify_limit_advice(exc.errno, fsinfo.inotify_limits())
            # Sticky for this run: the limit is host-wide, and flapping between methods helps nobody.
            self.forced_polling = f"polled every {self._poll_interval:g} s because {advice}"
            self._log.warning("inotify_limit_reached", account=self.account, path=self.watch_path,
                              message=self.forced_polling)
            method, reason = "polling", self.forced_polling
            try:
                observer = self._launch(method)
            except OSError as again:
                self._start_failed(now, f"cannot watch the inbox: {again}")
                return False
        self.observer = observer
        self.identity = (info.st_dev, info.st_ino)
        self.method, self.reason = method, reason
        self.available = True
        self.message = f"watching with {method}: {reason}"
        self.retry_at = None
        self.healthy_since = now
        self.starts += 1
        if self.starts == 1:
            self._log.info("observer_started", account=self.account, path=self.watch_path, method=method,
                           reason=reason)
        else:
            self.restarts += 1
            self._log.info("observer_restarted", account=self.account, path=self.watch_path, method=method,
                           reason=reason, restarts=self.restarts)
        return True

    def detach(self) -> BaseObserver | None:
        """Forget the running observer (for the watcher to stop and join) and return it, if there was one."""
        observer, self.observer = self.observer, None
        self.message = "stopped"
        return observer

    def _start_failed(self, now: float | None, text: str) -> None:
        self.available = True
        self.failures += 1
        delay = backoff(self.failures)
        self.retry_at = None if now is None else now + delay
        self.message = f"{text}; trying again in {delay:g} s"
        self._log.warning("observer_start_failed", account=self.account, path=self.watch_path, reason=text)

    def _mark_unavailable(self, text: str) -> None:
        message = f"unavailable: {text}"
        if self.available or self.message != message:
            self._log.warning("inbox_unavailable", account=self.account, path=self.watch_path, reason=text)
        self.available = False
        self.message = message

    # ---- supervision ---------------------------------------------------------------------------

    def supervise(self, now: float) -> bool:
        """Check the observer at time ``now``; return True when a new one was started (the caller rescans).

        A dead observer (its thread or an emitter thread stopped) is restarted after a backoff of 1 s
        doubling to 60 s; a replaced or remounted inbox (other device or inode) at once; a vanished
        inbox is marked unavailable and started once it is back.
        """
        observer = self.observer
        if observer is not None:
            problem = self._problem(observer)
            if problem is None:
                if self.healthy_since is None or now < self.healthy_since:
                    self.healthy_since = now
                elif self.failures and now - self.healthy_since >= HEALTHY_RESET:
                    self.failures = 0
                return False
            kind, text = problem
            self.observer = None
            discard(observer)
            if kind == "vanished":
                self._mark_unavailable(text)
                return False
            self._log.warning("observer_died", account=self.account, path=self.watch_path, reason=text)
            if kind == "dead":
                self.failures += 1
                delay = backoff(self.failures)
                self.retry_at = now + delay
                self.message = f"observer died ({text}); restarting in {delay:g} s"
                return False
            self.retry_at = None  # replaced or remounted: nothing is broken, watch the new folder now
        if self.retry_at is not None and now < self.retry_at:
            return False
        return self.start(now)

    def _problem(self, observer: BaseObserver) -> tuple[str, str] | None:
        """Return (kind, text) if the observer needs replacing, else None.

        kind is "vanished" (inbox gone or unreadable), "replaced" (another folder or mount now at the
        path), or "dead" (a thread stopped: the observer, or an emitter, which watchdog's polling
        emitter does on its own when a share goes away while ``observer.is_alive()`` stays True).
        """
        try:
            info = os.stat(self.watch_path)
        except OSError as exc:
            return "vanished", unavailable_text(exc)
        if not stat.S_ISDIR(info.st_mode):
            return "vanished", "the inbox path is not a folder"
        if (info.st_dev, info.st_ino) != self.identity:
            return "replaced", "the inbox folder was replaced or remounted"
        if not observer.is_alive():
            return "dead", "the observer thread stopped"
        if not emitters_alive(observer):
            return "dead", "its emitter thread stopped"
        return None

    def health(self) -> InboxHealth:
        """Return how the inbox is watched right now."""
        observer = self.observer
        alive = observer is not None and observer.is_alive() and emitters_alive(observer)
        return InboxHealth(self.account, self.path, self.method, self.reason, self.available, alive,
                           self.message, self.restarts)


def emitters_alive(observer: BaseObserver) -> bool:
    """Return True if the observer has emitters and every one of them is running."""
    try:
        emitters = list(observer.emitters)
    except RuntimeError:  # the set changed while being copied: the observer is being stopped
        return False
    return bool(emitters) and all(emitter.is_alive() for emitter in emitters)


def backoff(failures: int) -> float:
    """1 s after the first failure, doubling with each further one, never above MAX_BACKOFF."""
    return min(MAX_BACKOFF, 2.0 ** max(0, failures - 1))


def unavailable_text(exc: OSError) -> str:
    """Given the error of looking at an inbox, return why it is unavailable, in words for ``status``."""
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return "the inbox folder does not exist (share not mounted?); it is not created, and watched once it appears"
    return f"the inbox cannot be read: {exc.strerror or exc}"


def discard(observer: BaseObserver) -> None:
    """Stop an observer that failed or died, without letting its clean-up raise or hang for long."""
    quietly(observer.stop)
    quietly(observer.join, 1.0)


def quietly(call: Callable[..., object], *args: object) -> None:
    """Call ``call(*args)``, ignoring any Exception: clean-up of something already broken."""
    # Clean-up of a broken observer can raise (a thread never started, a watch already gone);
    # none of that must stop the supervisor.
    try:
        call(*args)
    except Exception:  # noqa: BLE001, S110 - see above: best-effort clean-up of something already broken
        pass
