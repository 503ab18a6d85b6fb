"""``watchfolder run``: the daemon in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import sys
import types
from collections.abc import Mapping

from watchfolder import logs
from watchfolder.config.settings import Settings
from watchfolder.daemon import wiring
from watchfolder.daemon.hooks import Hook
from watchfolder.daemon.stopping import StopEvent
from watchfolder.ops import health, metrics, notify, sdnotify


def service_hooks(settings: Settings, env: Mapping[str, str]) -> list[Hook]:
    """Return the hooks the settings and environment ask for: sd_notify under systemd ($NOTIFY_SOCKET),
    /healthz and /metrics (metrics.listen), notifications (notify.webhook or notify.ntfy).

    The health monitor comes first, so the others read a fresh store probe. Raise WatchfolderError
    when metrics.listen cannot be bound.
    """
    monitor = health.HealthMonitor()
    hooks: list[Hook] = [monitor]
    systemd = sdnotify.from_env(env, monitor)
    if systemd is not None:
        hooks.append(systemd)
    if settings.metrics.listen is not None:
        hooks.append(metrics.MetricsServer(settings, monitor))
    if settings.notify.webhook or settings.notify.ntfy:
        hooks.append(notify.Notifier(settings))
    return hooks if len(hooks) > 1 else []


def main(settings: Settings, *, hooks: list[Hook] | None = None) -> int:
    """Configure logging, install signal handlers that only set the stop flag, run the daemon."""
    logs.register_secret(settings.tiktok.client_secret)
    log_json = None if settings.log_format == "auto" else settings.log_format == "json"
    logs.configure(settings.log_level, json=log_json, stream=sys.stderr, zone=settings.zone())
    stopping = StopEvent()

    def stop(signum: int, frame: types.FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    daemon = wiring.build(settings, hooks=[*service_hooks(settings, os.environ), *(hooks or [])], stop=stopping)
    return daemon.run()
