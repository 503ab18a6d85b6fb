"""The one health rule, for systemd's watchdog, /healthz and the watchfolder_healthy metric.

The daemon is healthy when its main loop ran recently, no step of the loop is failing (a full state
disk, for one: every write the daemon has to make goes through such a step or a worker, so a store
that takes no writes shows there), and every inbox that exists has a live observer (an inbox that is
missing, e.g. an unmounted share, is reported but does not make the daemon unhealthy: restarting
would not bring the share back). Nothing is written to find this out: with nothing to do, the daemon
writes nothing at all (a NAS disk may spin down). ``HealthMonitor`` is a daemon hook kept in memory;
``check`` may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from watchfolder.daemon.hooks import DaemonView

LOOP_STALE_SECONDS = 30.0    # a main loop silent this long is hung (it looks at least once a second)


@dataclasses.dataclass(frozen=True)
class Health:
    """A health verdict: ``ok`` and, when not, one sentence per problem; the details for /healthz."""

    ok: bool
    problems: tuple[str, ...]
    loop_age_seconds: float | None
    store_ok: bool
    observers: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": "ok" if self.ok else "unhealthy", "problems": list(self.problems),
                "loop_age_seconds": self.loop_age_seconds, "store_ok": self.store_ok,
                "observers": list(self.observers)}


class HealthMonitor:
    """The one health rule (see the module docstring), as a daemon hook. Register it before its readers."""

    def __init__(self, *, loop_stale_seconds: float = LOOP_STALE_SECONDS) -> None:
        self.loop_stale_seconds = loop_stale_seconds
        self.daemon: DaemonView | None = None
        self.stopped = False
        self.ready_at = 0.0

    def on_ready(self, daemon: DaemonView) -> None:
        self.daemon = daemon
        self.ready_at = time.monotonic()

    def on_tick(self, daemon: DaemonView, now: float) -> None:
        return None

    def on_stop(self, daemon: DaemonView) -> None:
        self.stopped = True

    def check(self, daemon: DaemonView | None = None) -> Health:
        """Return the daemon's health now; callable from any thread (the watcher's health() takes a lock)."""
        daemon = daemon if daemon is not None else self.daemon
        if daemon is None or self.daemon is None:
            return Health(False, ("starting: the store and the observers are not ready yet",), None, False, ())
        if self.stopped or daemon.stop.is_set():
            return Health(False, ("stopping",), None, False, ())
        mono = time.monotonic()
        problems = []
        loop_age = mono - (daemon.loop_at or self.ready_at)
        if loop_age > self.loop_stale_seconds:
            problems.append(f"the main loop has not run for {loop_age:.0f} s")
        troubles = daemon.troubles()
        store_ok = not troubles
        for step, error in troubles.items():
            problems.append(f"the main loop cannot {step}: {error}")
        observers = []
        for inbox in daemon.inboxes():
            observers.append({"account": inbox.account, "method": inbox.method, "available": inbox.available,
                              "alive": inbox.alive, "restarts": inbox.restarts, "message": inbox.message})
            if inbox.available and not inbox.alive:
                problems.append(f"the inbox of {inbox.account} is not watched: {inbox.message}")
        return Health(not problems, tuple(problems), round(loop_age, 3), store_ok, tuple(observers))
