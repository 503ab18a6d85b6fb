"""What a daemon hook is, and the read-only view of the daemon it is given.

A hook (health monitor, metrics server, notifier, sd_notify) is called from the main loop:
``on_ready`` once the store is open, the observers run and the startup scan is done; ``on_tick``
on every pass; ``on_stop`` when the loop ends. It sees the daemon through a ``DaemonView``: the
settings, the clock, the stop flag, how the inboxes are watched, what the loop could not do, and
named store queries (``state``), never the store's connection, so a hook cannot change an item.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from watchfolder.config.settings import Settings
from watchfolder.intake.supervisor import InboxHealth
from watchfolder.store.queries import Reader
from watchfolder.tiktok.tokens import TokenStore


class DaemonView(Protocol):
    """The running daemon as its hooks see it (attributes are read, never set)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def log(self) -> Any: ...

    @property
    def stop(self) -> threading.Event: ...

    @property
    def loop_at(self) -> float:
        """time.monotonic() of the main loop's last pass (0 before the first)."""
        ...

    @property
    def state(self) -> Reader:
        """Named queries on the main loop's store connection."""
        ...

    @property
    def token_store(self) -> TokenStore: ...

    def inboxes(self) -> list[InboxHealth]:
        """How each inbox is watched right now (callable from any thread)."""
        ...

    def troubles(self) -> dict[str, str]:
        """What the main loop failed to do on its last try, by step (e.g. a full state disk); empty when none."""
        ...


class Hook(Protocol):
    def on_ready(self, daemon: DaemonView) -> None: ...

    def on_tick(self, daemon: DaemonView, now: float) -> None: ...

    def on_stop(self, daemon: DaemonView) -> None: ...
