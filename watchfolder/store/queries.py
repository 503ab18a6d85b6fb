"""Named read queries on the state database, for the main loop, its hooks and the status read model.

Every query here is cheap on a database that holds years of finished items: it names the accounts
and states it wants, so SQLite walks the ``(account, state)`` index instead of reading every item,
or it is an aggregate (COUNT, SUM) over such a range. Raw SQL lives in the store package only; the
callers get plain values. ``Reader`` binds the queries to one connection for the daemon's hooks,
which must not reach the connection itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from watchfolder.core.model import Item, State
from watchfolder.store.store import AccountState, Store, _item

OPEN_STATES = (State.QUEUED, State.WAITING, State.UPLOADING, State.PROCESSING)
FINISHED = (State.DONE, State.FAILED)

Samples = list[tuple[tuple[str, ...], float]]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _names(states: Iterable[State]) -> list[str]:
    return [str(state) for state in states]


def refused_in_inbox(store: Store, accounts: Sequence[str]) -> list[int]:
    """The items intake refused that still wait in an inbox (they move to failed/ at once).

    Runs on every pass of the main loop: naming the accounts lets SQLite use the (account, state)
    index instead of reading every item ever recorded (a scan of 10,000 items, 4 times a second, was
    most of the daemon's idle CPU).
    """
    if not accounts:
        return []
    rows = store.conn.execute(
        f"SELECT id FROM items WHERE account IN ({_marks(accounts)}) AND state = 'failed'"  # noqa: S608
        " AND moved = 0 AND folder = 'inbox'", list(accounts))
    return [int(row[0]) for row in rows]


def clear_sign_in_waits(store: Store, account: str, now: float) -> int:
    """An account signed in again: its items that waited for that are due at once. Return how many."""
    with store.transaction() as conn:
        cursor = conn.execute("UPDATE items SET next_attempt_at = NULL, detail = NULL, updated_at = ? "
                              "WHERE account = ? AND state = 'waiting' AND wait_reason = 'sign_in'", (now, account))
    return int(cursor.rowcount)


def hold_item(store: Store, item_id: int, until: float, detail: str, now: float) -> None:
    """Keep an unfinished item from being picked again before ``until``, saying why (a worker crashed on it).

    Its state does not change: the scheduler sees ``next_attempt_at`` and ``status`` shows the detail.
    """
    where = f"id = ? AND state IN ({_marks(OPEN_STATES)})"
    with store.transaction() as conn:
        conn.execute(f"UPDATE items SET next_attempt_at = ?, detail = ?, updated_at = ? WHERE {where}",  # noqa: S608
                     (until, detail, now, item_id, *_names(OPEN_STATES)))


def counts_by_state(store: Store, accounts: Sequence[str],
                    states: Sequence[State] = tuple(State)) -> dict[tuple[str, str], int]:
    """{(account, state): number of items}, zero for every pair asked for that has none."""
    counts = {(account, str(state)): 0 for account in accounts for state in states}
    if not accounts or not states:
        return counts
    rows = store.conn.execute(
        f"SELECT account, state, COUNT(*) FROM items WHERE account IN ({_marks(accounts)})"  # noqa: S608
        f" AND state IN ({_marks(states)}) GROUP BY account, state", [*accounts, *_names(states)])
    for account, state, count in rows:
        counts[(account, state)] = int(count)
    return counts


def finished_counts_since(store: Store, accounts: Sequence[str], since: float) -> dict[tuple[str, str], int]:
    """{(account, 'done' | 'failed'): items that finished since ``since``}."""
    counts = {(account, str(state)): 0 for account in accounts for state in FINISHED}
    if not accounts:
        return counts
    rows = store.conn.execute(
        f"SELECT account, state, COUNT(*) FROM items WHERE account IN ({_marks(accounts)})"  # noqa: S608
        " AND state IN ('done', 'failed') AND updated_at >= ? GROUP BY account, state", [*accounts, since])
    for account, state, count in rows:
        counts[(account, state)] = int(count)
    return counts


def open_items(store: Store, accounts: Sequence[str], states: Sequence[State] = OPEN_STATES,
               limit: int | None = None) -> list[Item]:
    """The unfinished items of these accounts (or those in ``states``), oldest first; at most ``limit``."""
    if not accounts:
        return []
    rows = store.conn.execute(
        f"SELECT * FROM items WHERE account IN ({_marks(accounts)}) AND state IN ({_marks(states)})"  # noqa: S608
        " ORDER BY detected_at, id LIMIT ?", [*accounts, *_names(states), -1 if limit is None else limit])
    return [_item(row) for row in rows]


def recently_finished(store: Store, accounts: Sequence[str], since: float, limit: int) -> list[Item]:
    """The last ``limit`` items of these accounts that finished (done or failed) since ``since``, oldest first."""
    if not accounts:
        return []
    rows = store.conn.execute(
        f"SELECT * FROM items WHERE account IN ({_marks(accounts)}) AND state IN ('done', 'failed')"  # noqa: S608
        " AND updated_at >= ? ORDER BY updated_at DESC, id DESC LIMIT ?", [*accounts, since, limit])
    return [_item(row) for row in reversed(list(rows))]


def ledger_count(store: Store, account: str, what: str, since: float) -> int:
    """How many ``what`` (post, draft, init) the account's ledger holds since ``since``."""
    row = store.conn.execute("SELECT COUNT(*) FROM ledger WHERE account = ? AND what = ? AND at > ?",
                             (account, what, since)).fetchone()
    return int(row[0])


def last_event_id(store: Store) -> int:
    (last,) = store.conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
    return int(last)


def outcomes_after(store: Store, event_id: int) -> list[tuple[int, int, str]]:
    """(event id, item id, 'done' | 'failed') of every event after ``event_id`` that recorded an outcome, in order."""
    rows = store.conn.execute("SELECT id, item_id, state FROM events WHERE id > ? AND state IN ('failed', 'done')"
                              " ORDER BY id", (event_id,))
    return [(int(event), int(item), str(state)) for event, item, state in rows]


def quick_check(store: Store) -> str:
    """SQLite's own verdict on the database file: "ok", or what is damaged."""
    return str(store.conn.execute("PRAGMA quick_check").fetchone()[0])


# ---- for /metrics: (labels, value) samples -------------------------------------------------------------

def _samples(store: Store, sql: str, args: Sequence[object]) -> Samples:
    return [(tuple(str(v) for v in row[:-1]), float(row[-1] or 0)) for row in store.conn.execute(sql, list(args))]


def uploads_by_result(store: Store, accounts: Sequence[str]) -> Samples:
    """((account, done | failed), n): finished items that had begun an upload."""
    return _samples(store, f"SELECT account, state, COUNT(*) FROM items WHERE account IN ({_marks(accounts)})"  # noqa: S608
                    " AND state IN ('done', 'failed') AND EXISTS (SELECT 1 FROM events e WHERE e.item_id = items.id"
                    " AND e.state = 'uploading') GROUP BY account, state", accounts)


def uploads_started(store: Store, accounts: Sequence[str]) -> Samples:
    """((account,), n): upload attempts begun (each event that entered ``uploading``)."""
    return _samples(store, f"SELECT i.account, COUNT(*) FROM events e JOIN items i ON i.id = e.item_id"  # noqa: S608
                    f" WHERE e.state = 'uploading' AND i.account IN ({_marks(accounts)})"
                    " GROUP BY i.account", accounts)


def uploaded_bytes(store: Store, accounts: Sequence[str]) -> Samples:
    return _samples(store, f"SELECT account, SUM(uploaded_bytes) FROM items WHERE account IN ({_marks(accounts)})"  # noqa: S608
                    " GROUP BY account", accounts)


def errors_by_code(store: Store, accounts: Sequence[str]) -> Samples:
    return _samples(store, f"SELECT account, COALESCE(error_code, 'unknown'), COUNT(*) FROM items"  # noqa: S608
                    f" WHERE account IN ({_marks(accounts)}) AND state = 'failed'"
                    " GROUP BY account, error_code", accounts)


def waiting_by_reason(store: Store, accounts: Sequence[str]) -> Samples:
    return _samples(store, f"SELECT account, COALESCE(wait_reason, 'unknown'), COUNT(*) FROM items"  # noqa: S608
                    f" WHERE account IN ({_marks(accounts)}) AND state = 'waiting'"
                    " GROUP BY account, wait_reason", accounts)


class Reader:
    """The queries a daemon hook may run, on the main loop's connection, and the hooks' own runtime rows.

    Hooks see this, never the connection: they cannot change an item.
    """

    def __init__(self, store: Store, accounts: Sequence[str]) -> None:
        self._store = store
        self.accounts = tuple(accounts)

    def get(self, item_id: int) -> Item:
        return self._store.get(item_id)

    def account_state(self, account: str) -> AccountState:
        return self._store.account_state(account)

    def runtime(self, key: str) -> tuple[Any, float] | None:
        return self._store.runtime(key)

    def set_runtime(self, key: str, value: Any, now: float) -> None:
        """Write a runtime row (a hook's own memory, written when it changed)."""
        self._store.set_runtime(key, value, now)

    def last_event_id(self) -> int:
        return last_event_id(self._store)

    def outcomes_after(self, event_id: int) -> list[tuple[int, int, str]]:
        return outcomes_after(self._store, event_id)

    def counts_by_state(self, states: Sequence[State] = OPEN_STATES) -> dict[tuple[str, str], int]:
        return counts_by_state(self._store, self.accounts, states)

    def open_items(self, states: Sequence[State] = OPEN_STATES) -> list[Item]:
        return open_items(self._store, self.accounts, states)
