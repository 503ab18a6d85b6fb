"""SQLite state: items, their event history, the rate-limit ledger and per-account waits.

``BEGIN IMMEDIATE`` for every write; state changes only through the transition table
(``Store.apply``), compare-and-set, each appending an event row (the sidecar's history). The
schema, its migrations and the connection settings are in ``schema.py``. Over 300 lines because it
is the one place with SQL on items, events, the ledger and accounts.
Each thread opens its own ``Store``; connections are never shared between threads.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from watchfolder.core import machine, transitions
from watchfolder.core.errors import StoreError
from watchfolder.core.model import ITEM_FIELDS, Item, State
from watchfolder.core.transitions import Event
from watchfolder.store import schema
from watchfolder.store.schema import DB_NAME, MIGRATIONS, connect

__all__ = ["DB_NAME", "MIGRATIONS", "AccountState", "Store", "connect"]

# The commits a power cut must not undo, fsynced one by one (the rest are NORMAL: see schema.connect). On
# the happy path an item makes three: the intent before its init goes out, TikTok's answer before the
# first byte, the outcome before the file moves; chunk progress is durable too (Pipeline._upload).
DURABLE_EVENTS = frozenset({Event.INIT_SENT, Event.INIT_ANSWERED, Event.PUBLISH_COMPLETE, Event.FAILED})

ACCOUNT_FIELDS = ("wait_until", "wait_reason", "wait_code", "probe_seconds", "paused_code",
                  "paused_message", "paused_tokens_at")


@dataclasses.dataclass(frozen=True, slots=True)
class AccountState:
    """Per-account waits and pauses that outlive a restart."""

    account: str
    wait_until: float | None = None
    wait_reason: str | None = None
    wait_code: str | None = None
    probe_seconds: float | None = None
    paused_code: str | None = None
    paused_message: str | None = None
    paused_tokens_at: float | None = None


class Store:
    """The state database of one ``state_dir``. Not shared between threads: open one per thread."""

    def __init__(self, state_dir: Path, *, readonly: bool = False) -> None:
        self.path = Path(state_dir) / DB_NAME
        if readonly and not self.path.exists():
            raise StoreError(f"no state database at {self.path}: has `watchfolder run` ever started?")
        try:
            self.conn = connect(self.path, readonly=readonly)
            if not readonly:
                self.migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the state database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction; roll back on any exception. ``durable``:
        the commit is on disk (the WAL fsynced) before this returns; else it survives a crash of the
        process, and a power cut once a later durable commit or a checkpoint syncs the WAL."""
        if durable:
            self.conn.execute("PRAGMA synchronous=FULL")
            try:
                with self.transaction() as conn:
                    yield conn
            finally:
                self.conn.execute("PRAGMA synchronous=NORMAL")
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the state database is busy: {exc}") from exc
        try:
            yield self.conn
        except BaseException:
            # SQLite may have rolled back already (disk full, I/O error): a second ROLLBACK would raise
            # "no transaction is active" and hide the real error.
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error being raised says more than this one
            raise
        self.conn.execute("COMMIT")

    def migrate(self) -> int:
        """Apply the migrations not applied yet, in order; return the schema version."""
        with self.transaction() as conn:
            return schema.migrate(conn)

    # ---- items -------------------------------------------------------------------------------

    def add_item(self, *, account: str, name: str, kind: str, now: float, state: State = State.QUEUED,
                 note: str | None = None, **fields: Any) -> Item:
        """Record a newly taken-in item with its first event; return it."""
        (item_id,) = self.add_items([{"account": account, "name": name, "kind": kind, "now": now, "state": state,
                                      "note": note, **fields}])
        return self.get(item_id)

    def add_items(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        """Record newly taken-in items (each the arguments of ``add_item``) in one transaction, so a pass of
        intake is one commit, not one per file; return their ids in order. All or none: on an error none is
        recorded (intake keeps their entries and takes them in again)."""
        rows = []
        for record in records:
            fields = dict(record)
            account, name, kind, now = fields.pop("account"), fields.pop("name"), fields.pop("kind"), fields.pop("now")
            state, note = fields.pop("state", State.QUEUED), fields.pop("note", None)
            _check_fields(fields)
            rows.append(({"account": account, "name": name, "kind": kind, "state": str(state),
                          "detected_at": now, "updated_at": now, **fields}, now, note))
        ids = []
        with self.transaction() as conn:
            for columns, now, note in rows:
                names = ", ".join(columns)
                marks = ", ".join("?" for _ in columns)
                cursor = conn.execute(f"INSERT INTO items ({names}) VALUES ({marks})",  # noqa: S608 - fixed names
                                      [_encode(v) for v in columns.values()])
                item_id = int(cursor.lastrowid or 0)
                # "detected" is the first event of every history, not a stored state: intake records an
                # item only once it has settled.
                conn.executemany("INSERT INTO events (item_id, state, at, detail) VALUES (?, ?, ?, ?)",
                                 [(item_id, "detected", now, None), (item_id, columns["state"], now, note)])
                ids.append(item_id)
        return ids

    def get(self, item_id: int) -> Item:
        row = self.conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise StoreError(f"no item {item_id}")
        return _item(row)

    def apply(self, item: Item, event: Event, *, now: float, note: str | None = None,
              ledger: Iterable[tuple[str, float]] = (), retime: Iterable[tuple[str, float, float]] = (),
              **fields: Any) -> Item:
        """Record ``event`` for ``item``: the one way to change ``state``, ``folder``, ``publish_id`` or ``moved``.

        The new state comes from the transition table; an illegal ``(state, event)`` or a guarded field the
        event may not set raises StoreError naming them. Compare-and-set on ``item.state``: StoreError when the
        item is no longer in it (someone else got there first). Every pair but the quiet ones appends an
        event row (with ``note``) to the item's history. ``ledger``: (what, at) calls of the item's account
        recorded in the same commit (see ``ledger_add``); ``retime``: (what, at, answered) moves a call recorded
        at ``at`` to when its answer came. Returns the row as committed (no second read).
        """
        _check_fields(fields)
        new = transitions.next_state(item.state, event)
        if new is None:
            raise StoreError(f"item {item.id}: event {event} is not allowed in state {item.state}")
        guarded = set(fields) & transitions.GUARDED_FIELDS
        if not guarded <= transitions.EVENT_FIELDS.get(event, frozenset()):
            raise StoreError(f"item {item.id}: event {event} may not set {', '.join(sorted(guarded))}")
        sets = {"state": str(new), "updated_at": now, **fields}
        assignments = ", ".join(f"{key} = ?" for key in sets)
        with self.transaction(durable=event in DURABLE_EVENTS) as conn:
            row = _one(conn.execute(
                f"UPDATE items SET {assignments} WHERE id = ? AND state = ? RETURNING *",  # noqa: S608 - fixed names
                [*(_encode(v) for v in sets.values()), item.id, str(item.state)],
            ))
            if row is None:
                found = conn.execute("SELECT state FROM items WHERE id = ?", (item.id,)).fetchone()
                actual = found[0] if found else "missing"
                raise StoreError(f"item {item.id} was {actual}, not {item.state} (event {event})")
            if (item.state, event) not in transitions.QUIET:
                conn.execute("INSERT INTO events (item_id, state, at, detail) VALUES (?, ?, ?, ?)",
                             (item.id, str(new), now, note))
            _record(conn, item.account, ledger)
            _retime(conn, item.account, retime)
        return _item(row)

    def update(self, item_id: int, *, now: float, durable: bool = False, **fields: Any) -> Item:
        """Set fields of an item that are neither its state nor its place (progress, details); return the row
        as committed.

        ``state``, ``folder``, ``publish_id`` and ``moved`` are refused: they change only through ``apply``.
        """
        _check_fields(fields)
        guarded = set(fields) & transitions.GUARDED_FIELDS
        if guarded:
            raise StoreError(f"item {item_id}: {', '.join(sorted(guarded))} change only through an event")
        sets = {"updated_at": now, **fields}
        assignments = ", ".join(f"{key} = ?" for key in sets)
        with self.transaction(durable=durable) as conn:
            row = _one(conn.execute(f"UPDATE items SET {assignments} WHERE id = ? RETURNING *",  # noqa: S608
                                    [*(_encode(v) for v in sets.values()), item_id]))
        if row is None:
            raise StoreError(f"no item {item_id}")
        return _item(row)

    def note(self, item_id: int, state: str, *, now: float, detail: str | None = None) -> None:
        """Append an event row that is not a state change (an orphaned init, a realignment)."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO events (item_id, state, at, detail) VALUES (?, ?, ?, ?)",
                         (item_id, state, now, detail))

    def find_open(self, account: str, name: str) -> Item | None:
        """Return the unfinished item of this account whose file is called ``name`` in inbox/processing."""
        row = self.conn.execute(
            "SELECT * FROM items WHERE account = ? AND name = ? AND folder IN ('inbox', 'processing')"
            " AND state NOT IN ('done', 'failed', 'cancelled') ORDER BY id DESC LIMIT 1",
            (account, _encode(name)),
        ).fetchone()
        return _item(row) if row else None

    def items(self, *, states: Iterable[State] | None = None, account: str | None = None,
              unmoved: bool = False) -> list[Item]:
        """Items filtered by state and account, oldest first."""
        where, args = [], []
        if states is not None:
            names = [str(s) for s in states]
            where.append(f"state IN ({', '.join('?' for _ in names)})")
            args += names
        if account is not None:
            where.append("account = ?")
            args.append(account)
        if unmoved:
            where.append("moved = 0 AND state IN ('done', 'failed')")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.conn.execute(f"SELECT * FROM items {clause} ORDER BY detected_at, id", args)  # noqa: S608
        return [_item(row) for row in rows]

    def next_due(self, account: str, now: float) -> Item | None:
        """The account's next item to work on: a due ``publish_at`` first, then first detected, first served."""
        row = self.conn.execute(
            "SELECT * FROM items WHERE account = ? AND state IN ('queued', 'waiting', 'uploading', 'processing')"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            " ORDER BY CASE WHEN state IN ('uploading', 'processing') THEN 0"
            "               WHEN publish_at IS NOT NULL THEN 1 ELSE 2 END,"
            "          COALESCE(publish_at, detected_at), id LIMIT 1",
            (account, now),
        ).fetchone()
        return _item(row) if row else None

    def same_key(self, item: Item) -> list[Item]:
        """The other items of the account that may hold the same content as ``item`` (the same
        ``quick_key``; an item recorded before keys existed: the same size and a known sha256) and that
        would make it a duplicate: first the earlier ones that are pending or done, then those that went
        to TikTok (or are on their way) although taken in later. A copy taken in later can get there
        first while the earlier one waits (``publish_at``, backoff): the one that went stays the
        original. Failed and cancelled items never count. The caller compares the full sha256."""
        if not item.quick_key:
            return []
        rows = self.conn.execute(
            "SELECT * FROM items WHERE account = ? AND id != ? AND state NOT IN ('failed', 'cancelled')"
            " AND (quick_key = ? OR (quick_key IS NULL AND sha256 IS NOT NULL AND size = ?))"
            " AND (id < ? OR publish_id IS NOT NULL OR state IN ('uploading', 'processing', 'done'))"
            " ORDER BY CASE WHEN id < ? THEN 0 ELSE 1 END, id",
            (item.account, item.id, item.quick_key, item.size, item.id, item.id),
        )
        return [_item(row) for row in rows]

    def history(self, item_id: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT state, at, detail FROM events WHERE item_id = ? ORDER BY id", (item_id,))
        return [{"state": row["state"], "at": row["at"], "detail": row["detail"]} for row in rows]

    def finished_since(self, since: float) -> list[Item]:
        rows = self.conn.execute(
            "SELECT * FROM items WHERE state IN ('done', 'failed') AND updated_at >= ? ORDER BY updated_at", (since,)
        )
        return [_item(row) for row in rows]

    # ---- the rate-limit ledger ---------------------------------------------------------------

    def ledger_add(self, account: str, what: str, at: float) -> None:
        """Record a call (or a post) at ``at``, and forget the ones older than any window asks about."""
        with self.transaction() as conn:
            _record(conn, account, [(what, at)])

    def ledger_times(self, account: str, what: str, since: float) -> list[float]:
        rows = self.conn.execute("SELECT at FROM ledger WHERE account = ? AND what = ? AND at > ? ORDER BY at",
                                 (account, what, since))
        return [row[0] for row in rows]

    # ---- accounts and runtime ----------------------------------------------------------------

    def account_state(self, account: str) -> AccountState:
        row = self.conn.execute("SELECT * FROM accounts WHERE account = ?", (account,)).fetchone()
        if row is None:
            return AccountState(account)
        return AccountState(**{key: row[key] for key in row.keys()})  # noqa: SIM118 - sqlite3.Row

    def set_account_state(self, account: str, **fields: Any) -> AccountState:
        unknown = set(fields) - set(ACCOUNT_FIELDS)
        if unknown:
            raise StoreError(f"unknown account fields: {sorted(unknown)}")
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO accounts (account) VALUES (?)", (account,))
            if fields:
                assignments = ", ".join(f"{key} = ?" for key in fields)
                conn.execute(f"UPDATE accounts SET {assignments} WHERE account = ?",  # noqa: S608
                             [*fields.values(), account])
        return self.account_state(account)

    def set_runtime(self, key: str, value: Any, now: float) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO runtime (key, value, at) VALUES (?, ?, ?)",
                         (key, json.dumps(value), now))

    def runtime(self, key: str) -> tuple[Any, float] | None:
        row = self.conn.execute("SELECT value, at FROM runtime WHERE key = ?", (key,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    def quick_check(self) -> str:
        """Return SQLite's ``PRAGMA quick_check`` verdict: ``ok``, or what is damaged (a damaged page may
        also raise sqlite3.DatabaseError, which is returned as text too)."""
        try:
            rows = self.conn.execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return "; ".join(str(row[0]) for row in rows)


def _one(cursor: sqlite3.Cursor) -> sqlite3.Row | None:
    """The row a RETURNING statement gave (None: it touched none), the statement run to its end."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _record(conn: sqlite3.Connection, account: str, calls: Iterable[tuple[str, float]]) -> None:
    """Inside the caller's transaction: add (what, at) calls to the account's ledger, forget the old ones."""
    latest = None
    for what, at in calls:
        conn.execute("INSERT INTO ledger (account, what, at) VALUES (?, ?, ?)", (account, what, at))
        latest = at if latest is None else max(latest, at)
    if latest is not None:
        conn.execute("DELETE FROM ledger WHERE at < ?", (latest - machine.LEDGER_KEEP,))


def _retime(conn: sqlite3.Connection, account: str, calls: Iterable[tuple[str, float, float]]) -> None:
    """Inside the caller's transaction: a call recorded when it was decided counts from when it was answered.

    TikTok counts a call when it arrives, which may be well after we decided to send it (a slow connect, a
    loaded NAS); its answer came later still, so a window counted from the answer never undercounts."""
    for what, at, answered in calls:
        conn.execute("UPDATE ledger SET at = ? WHERE rowid = (SELECT rowid FROM ledger WHERE account = ? AND what = ?"
                     " AND at = ? LIMIT 1)", (answered, account, what, at))


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise StoreError(f"unknown item fields: {sorted(unknown)}")


def _encode(value: Any) -> Any:
    if isinstance(value, State):
        return str(value)
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A file name whose bytes are not UTF-8 holds surrogate escapes (os.fsdecode), which SQLite
            # cannot store as text: keep its exact bytes as a BLOB; _item turns them back into the name.
            return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list | dict | tuple):
        return json.dumps(value)
    return value


def _item(row: sqlite3.Row) -> Item:
    values = {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row
    for key, value in values.items():
        if isinstance(value, bytes):   # a name stored as its bytes by _encode
            values[key] = value.decode("utf-8", "surrogateescape")
    values["state"] = State(values["state"])
    return Item(**values)
