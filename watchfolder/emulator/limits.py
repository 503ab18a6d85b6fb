"""Per-token, per-endpoint sliding 60 s windows (reference §5: "one-minute sliding window")."""

from __future__ import annotations

import threading
from collections import deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Counts accepted calls per (access token, endpoint) over the last 60 s of the emulator's clock."""

    def __init__(self, limits: dict[str, int]) -> None:
        self._limits = limits
        self._calls: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, token: str, endpoint: str, now: float) -> bool:
        """Given a call at ``now``, return True and count it if the window has room, else return False.

        A refused call is not counted: a client that backs off gets through once the window slides.
        """
        limit = self._limits.get(endpoint, 0)
        if limit <= 0:
            return True
        with self._lock:
            calls = self._calls.setdefault((token, endpoint), deque())
            while calls and calls[0] <= now - WINDOW_SECONDS:
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            return True
