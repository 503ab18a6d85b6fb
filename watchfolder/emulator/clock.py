"""Clocks the emulator reads: every time-based rule (token expiry, rate windows, caps, status) asks one.

A test moves time with ``advance`` instead of sleeping; the emulator never calls ``time.time()`` for a rule.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the emulator needs from a clock: the current epoch seconds, and a way to jump ahead."""

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...


class ManualClock:
    """A clock that moves only when told to.

    Given ``start`` (epoch seconds; default: the real time at creation), ``now()`` returns it until
    ``advance(s)`` adds ``s``. Raise ValueError on a negative advance: time in the emulator never runs back.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` ahead and return the new time."""
        if seconds < 0:
            raise ValueError("the emulator's clock cannot go back")
        with self._lock:
            self._now += float(seconds)
            return self._now


class OffsetClock:
    """Real time plus an offset that ``advance`` grows.

    This is the default: a daemon in another process keeps reading real time, and a test can still jump
    the emulator 24 hours ahead (through the control endpoint) without sleeping.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Add ``seconds`` to the offset and return the new time. Raise ValueError if negative."""
        if seconds < 0:
            raise ValueError("the emulator's clock cannot go back")
        with self._lock:
            self._offset += float(seconds)
            return time.time() + self._offset
