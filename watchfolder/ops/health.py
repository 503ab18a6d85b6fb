"""The one health rule, for systemd's watchdog, /healthz and the watchfolder_healthy metric.

The daemon is healthy when its main loop ran recently, its store took a write recently, no step of
the loop is failing (a full state disk, for one), and every inbox that exists has a live observer (an
inbox that is missing, e.g. an unmounted share, is reported but does not make the daemon unhealthy:
restarting would not bring the share back). ``HealthMonitor`` is a daemon hook that probes the store
from the main loop; ``check`` may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from watchfolder.daemon.hooks import DaemonView

LOOP_STALE_SECONDS = 30.0    # a main loop silent this long is hung (a pass normally takes well under a second)
STORE_PROBE_SECONDS = 5.0    # how often the main loop proves the store still takes a write
STORE_STALE_SECONDS = 30.0   # no successful write for this long: the store counts as unwritable


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

    def __init__(self, *, loop_stale_seconds: float = LOOP_STALE_SECONDS,
                 probe_seconds: float = STORE_PROBE_SECONDS, store_stale_seconds: float = STORE_STALE_SECONDS) -> None:
        self.loop_stale_seconds = loop_stale_seconds
        self.probe_seconds = probe_seconds
        self.store_stale_seconds = store_stale_seconds
        self.daemon: DaemonView | None = None
        self.stopped = False
        self.store_written_at = 0.0
        self.store_error = ""
        self._last_probe = 0.0

    def on_ready(self, daemon: DaemonView) -> None:
        self.daemon = daemon
        self.store_written_at = self._last_probe = time.monotonic()  # the store was just opened and migrated

    def on_tick(self, daemon: DaemonView, now: float) -> None:
        """Every few seconds, write a heartbeat row with the main loop's own connection (the real write path)."""
        mono = time.monotonic()
        if mono - self._last_probe < self.probe_seconds:
            return
        self._last_probe = mono
        try:
            daemon.state.set_runtime("health", {"at": now}, now)
        except Exception as exc:  # noqa: BLE001 - any failure to write is the finding, whatever its class
            self.store_error = f"{type(exc).__name__}: {exc}"
            return
        self.store_written_at, self.store_error = mono, ""

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
        loop_age = mono - (daemon.loop_at or self.store_written_at)
        if loop_age > self.loop_stale_seconds:
            problems.append(f"the main loop has not run for {loop_age:.0f} s")
        store_ok = mono - self.store_written_at <= self.store_stale_seconds
        if not store_ok or self.store_error:
            store_ok = False
            problems.append(f"the state database takes no writes ({self.store_error or 'no recent write'})")
        for step, error in daemon.troubles().items():
            problems.append(f"the main loop cannot {step}: {error}")
        observers = []
        for inbox in daemon.inboxes():
            observers.append({"account": inbox.account, "method": inbox.method, "available": inbox.available,
                              "alive": inbox.alive, "restarts": inbox.restarts, "message": inbox.message})
            if inbox.available and not inbox.alive:
                problems.append(f"the inbox of {inbox.account} is not watched: {inbox.message}")
        return Health(not problems, tuple(problems), round(loop_age, 3), store_ok, tuple(observers))
