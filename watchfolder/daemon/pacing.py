"""Pacing from the SQLite ledger, so the daemon itself never causes a 429 (the ledger survives restarts)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from watchfolder.core import machine
from watchfolder.store.store import Store

SHORT_WAIT = 5.0   # waits up to this long are slept through; longer ones park the item


class Parked(Exception):
    """The call does not fit the window now: park the item until ``until``."""

    def __init__(self, until: float | None, reason: str, detail: str | None = None) -> None:
        super().__init__(f"{reason} until {until}")
        self.until = until
        self.reason = reason
        self.detail = detail


class Stopped(Exception):
    """The daemon is stopping; the item stays where it is and resumes at the next start."""


class Pacer:
    """Sliding 60 s windows per account and call kind ("init", "status", "creator_info")."""

    def __init__(self, store: Store, limits: Mapping[str, int], clock: Callable[[], float],
                 stop: threading.Event) -> None:
        self.store = store
        self.limits = dict(limits)
        self.clock = clock
        self.stop = stop

    def allowed_at(self, account: str, what: str) -> float:
        """When the next call of this kind fits the account's window (``now`` if it fits already)."""
        now = self.clock()
        limit = self.limits.get(what, 0)
        if limit <= 0:
            return now   # no limit: the ledger need not be read
        times = self.store.ledger_times(account, what, now - machine.WINDOW)
        return machine.rate_allows_at(times, limit, now)

    def turn(self, account: str, what: str) -> float:
        """Sleep a few seconds if the window needs it (raise Parked for longer waits); return the time to
        record the call at. The caller records it with the write that announces the call
        (``Store.apply(ledger=...)``), or with ``Store.ledger_add``."""
        at = self.allowed_at(account, what)
        wait = at - self.clock()
        if wait > SHORT_WAIT:
            raise Parked(at, "rate_limit")
        if wait > 0 and self.stop.wait(wait):
            raise Stopped
        return self.clock()

    def take(self, account: str, what: str) -> None:
        """Record one call, sleeping a few seconds first if needed; raise Parked for longer waits."""
        self.store.ledger_add(account, what, self.turn(account, what))
