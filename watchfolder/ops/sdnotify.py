"""systemd's notify protocol: READY=1, readable STATUS= lines, and WATCHDOG=1 only while the daemon is healthy.

sd_notify is one datagram per message on the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or
``@name`` for the abstract namespace); no library is needed. ``SystemdNotifier`` is a daemon hook
(``on_ready`` / ``on_tick`` / ``on_stop``): READY=1 goes out once the store is open and the observers
run; WATCHDOG=1 is sent from the main loop, at most every ``$WATCHDOG_USEC``/2, and only when the
health monitor says the loop is fresh, the store takes writes and every available inbox is watched. A
loop that hangs therefore stops the pings, and systemd restarts the service after ``WatchdogSec=``.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from watchfolder import logs
from watchfolder.config.settings import Settings
from watchfolder.daemon.hooks import DaemonView
from watchfolder.ops import report
from watchfolder.ops.health import HealthMonitor
from watchfolder.store.queries import Reader

STATUS_SECONDS = 5.0   # how often the STATUS= line is recomputed from the store (sent only when it changes)

Summary = Callable[[Settings, Reader, float], dict[str, Any]]


def socket_address(env: Mapping[str, str]) -> str | bytes | None:
    """Given the environment, return the address of systemd's notify socket, or None when not under systemd.

    ``@name`` means the abstract namespace (a leading NUL byte); anything else is a filesystem path.
    """
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Given the environment, return how often to ping the watchdog (half of ``$WATCHDOG_USEC``), in seconds.

    Return None when no watchdog is asked for, or when ``$WATCHDOG_PID`` names another process
    (the variable was inherited and is meant for a parent).
    """
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner.isdigit() and int(owner) != (os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


class Notify:
    """Sends sd_notify messages; never raises (a lost status line must not stop the daemon)."""

    def __init__(self, address: str | bytes, log: logs.Logger | None = None) -> None:
        self.address = address
        self.log = log if log is not None else logs.get_logger()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._lock = threading.Lock()
        self._failed = False
        self._closed = False

    def send(self, *lines: str) -> bool:
        """Send the lines as one datagram (``KEY=value`` each); return True if it went out."""
        payload = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8")
        try:
            with self._lock:
                if self._closed:
                    return False  # the stop announcement may race the final one; the socket is gone
                self._socket.sendto(payload, self.address)
        except OSError as exc:
            if not self._failed:  # once: a missing socket would otherwise log four times a second
                self.log.warning("sd_notify_failed", error=exc.strerror or str(exc))
            self._failed = True
            return False
        self._failed = False
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._socket.close()


def status_line(data: dict[str, Any], now: float) -> str:
    """Given ``report.live_summary(...)`` data and the time, return one line for ``systemctl status``.

    For example "3 queued, 1 uploading 42%, 1 at TikTok, alice waiting until 18:40"; "idle" when
    nothing is pending.
    """
    accounts = data.get("accounts") or []
    items = data.get("items") or []
    parts = []
    queued = sum(int(account.get("queued", 0)) for account in accounts)
    if queued:
        parts.append(f"{queued} queued")
    uploading = [row for row in items if row.get("state") == "uploading"]
    if len(uploading) == 1:
        parts.append(f"1 uploading {uploading[0].get('percent', 0)}%")
    elif uploading:
        percents = ", ".join(f"{row.get('percent', 0)}%" for row in uploading)
        parts.append(f"{len(uploading)} uploading ({percents})")
    processing = sum(int(account.get("processing", 0)) for account in accounts)
    if processing:
        parts.append(f"{processing} at TikTok")
    waiting = sum(int(account.get("waiting", 0)) for account in accounts)
    held = []
    for account in accounts:
        name = account.get("account", "?")
        if account.get("paused") == "sign_in":
            held.append(f"{name} needs sign-in")
        elif account.get("paused"):
            held.append(f"{name} paused ({account['paused']})")
        else:
            until = _epoch(account.get("wait_until"))
            if until is not None and until > now:
                held.append(f"{name} waiting until {_clock(until, now)}")
    if waiting:
        parts.append(f"{waiting} waiting")
    parts += held
    return ", ".join(parts) or "idle"


def _epoch(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _clock(epoch: float, now: float) -> str:
    """Local "18:40" today, "Nov 27 18:40" on another day."""
    when = datetime.datetime.fromtimestamp(epoch)
    same_day = when.date() == datetime.datetime.fromtimestamp(now).date()
    return when.strftime("%H:%M" if same_day else "%b %d %H:%M")


class SystemdNotifier:
    """The daemon hook speaking sd_notify. Build it with :func:`from_env` (None outside systemd)."""

    def __init__(self, notify: Notify, monitor: HealthMonitor, *, watchdog_seconds: float | None,
                 status_seconds: float = STATUS_SECONDS,
                 summarize: Summary = report.live_summary) -> None:
        self.notify = notify
        self.monitor = monitor
        self.watchdog_seconds = watchdog_seconds
        self.status_seconds = status_seconds
        self.summarize = summarize
        self.last_ping = 0.0
        self.last_status_at = 0.0
        self.last_status = ""

    def on_ready(self, daemon: DaemonView) -> None:
        """Tell systemd the daemon is up: the store is open and the observers run (called once, after open())."""
        now = daemon.clock()
        self.last_status = self._status(daemon, now)
        self.last_status_at = time.monotonic()
        self.notify.send("READY=1", f"STATUS={self.last_status}")
        # The loop's stop event is set by the signal handler; STOPPING=1 should go out then, not after the
        # chunk in flight is checkpointed, so systemd shows "deactivating" while the daemon finishes.
        threading.Thread(target=self._announce_stop, args=(daemon,), name="sd-notify-stop", daemon=True).start()

    def on_tick(self, daemon: DaemonView, now: float) -> None:
        """Ping the watchdog when due and healthy; refresh the STATUS= line every few seconds."""
        mono = time.monotonic()
        report = None
        if self.watchdog_seconds is not None and mono - self.last_ping >= self.watchdog_seconds:
            report = self.monitor.check(daemon)
            if report.ok and self.notify.send("WATCHDOG=1"):
                self.last_ping = mono
        if mono - self.last_status_at >= self.status_seconds:
            self.last_status_at = mono
            report = report or self.monitor.check(daemon)
            text = self._status(daemon, now) if report.ok else "unhealthy: " + "; ".join(report.problems)
            if text != self.last_status and self.notify.send(f"STATUS={text}"):
                self.last_status = text

    def on_stop(self, daemon: DaemonView) -> None:
        self.notify.send("STOPPING=1", "STATUS=stopped")
        self.notify.close()

    def _announce_stop(self, daemon: DaemonView) -> None:
        daemon.stop.wait()
        self.notify.send("STOPPING=1", "STATUS=stopping: letting the chunk in flight finish")

    def _status(self, daemon: DaemonView, now: float) -> str:
        try:
            return status_line(self.summarize(daemon.settings, daemon.state, now), now)
        except Exception as exc:  # noqa: BLE001 - a status line is cosmetic; it must never stop the daemon
            daemon.log.warning("status_line_failed", error=f"{type(exc).__name__}: {exc}")
            return "running"


def from_env(env: Mapping[str, str], monitor: HealthMonitor, log: logs.Logger | None = None) -> SystemdNotifier | None:
    """Given the environment and the shared health monitor, return the sd_notify hook, or None outside systemd."""
    address = socket_address(env)
    if address is None:
        return None
    return SystemdNotifier(Notify(address, log), monitor, watchdog_seconds=watchdog_interval(env))
