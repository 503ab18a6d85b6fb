"""The daemon's stop flag, which also wakes the main loop."""

from __future__ import annotations

import queue
import threading
from typing import Any


class StopEvent(threading.Event):
    """Setting it also sets ``wake``, the event the main loop sleeps on, so a stop is seen at once; a
    finished worker sets ``wake`` alone, so its account's next item starts at once instead of at the
    next tick (with a backlog, that tick was most of each item's time)."""

    def __init__(self) -> None:
        super().__init__()
        self.wake = threading.Event()

    def set(self) -> None:
        super().set()
        self.wake.set()


class WakingQueue(queue.Queue[Any]):
    """The watcher's event queue: each event put also wakes the main loop, which otherwise sleeps until
    something falls due."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self.wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self.wake.set()
