"""``watchfolder run``: the daemon in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import types

from watchfolder import logs, service
from watchfolder.config import Settings


def main(settings: Settings, *, hooks: list[object] | None = None) -> int:
    """Configure logging, install signal handlers that only set the stop flag, run the daemon."""
    logs.register_secret(settings.tiktok.client_secret)
    logs.configure(settings.log_level, stream=sys.stderr)
    daemon = service.Daemon(settings, hooks=list(hooks or []))

    def stop(signum: int, frame: types.FrameType | None) -> None:
        daemon.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return daemon.run()
