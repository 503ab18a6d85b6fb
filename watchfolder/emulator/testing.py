"""Start an emulator for a test and always stop it: ``with running_emulator(...) as emu: ...``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from watchfolder.emulator.clock import Clock, ManualClock
from watchfolder.emulator.config import EmulatorConfig
from watchfolder.emulator.core import Emulator

# What a test usually wants: processing that finishes at once, the clock under the test's control, and
# photo URLs on the test's own http://127.0.0.1 server.
TEST_DEFAULTS: dict[str, Any] = {"processing_seconds": 0.0, "require_https_urls": False}


@contextmanager
def running_emulator(clock: Clock | None = None, **config: Any) -> Iterator[Emulator]:
    """Yield an emulator serving on a free 127.0.0.1 port in a background thread; stop it afterwards.

    ``config`` holds EmulatorConfig fields over TEST_DEFAULTS; ``clock`` defaults to a ManualClock, so
    time moves only when the test calls ``emu.clock.advance``. ``emu.base_url`` is the API base URL.
    """
    emulator = Emulator(EmulatorConfig(**{**TEST_DEFAULTS, **config}), clock=clock or ManualClock())
    emulator.start("127.0.0.1", 0)
    try:
        yield emulator
    finally:
        emulator.stop()
