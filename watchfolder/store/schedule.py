"""The scheduler's queries: which items are due in each lane, and when the next one falls due.

Uploads (queued, waiting, uploading) are one lane per account; items TikTok is processing (with a
``publish_id``) are the poller's lane. Both name the account (or the state) so SQLite walks the
``(account, state)`` index. Also what holds an account back (``account_hold``: a pause, a wait, the
cap the ledger foresees), shared by the scheduler, the pipeline and ``status``, and ``resume``'s
``lift_waits``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from watchfolder.core import machine
from watchfolder.core.model import Item
from watchfolder.store.store import AccountState, Store, _item

UPLOAD_STATES = ("queued", "waiting", "uploading")
_OPEN = "('queued', 'waiting', 'uploading', 'processing')"   # as the partial index items_open_due names them
USER_PAUSE = "user"   # accounts.paused_code of `watchfolder pause`


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def due_uploads(store: Store, account: str, now: float, exclude: Collection[int], limit: int) -> list[Item]:
    """The account's next items to upload (not in ``exclude``): one under way first, then a due
    ``publish_at``, then first detected, first served."""
    skip = sorted(exclude)
    rows = store.conn.execute(
        f"SELECT * FROM items WHERE account = ? AND state IN ({_marks(UPLOAD_STATES)})"  # noqa: S608
        " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        f" AND id NOT IN ({_marks(skip)})"
        " ORDER BY CASE WHEN state = 'uploading' THEN 0 WHEN publish_at IS NOT NULL THEN 1 ELSE 2 END,"
        "          COALESCE(publish_at, detected_at), id LIMIT ?",
        (account, *UPLOAD_STATES, now, *skip, limit))
    return [_item(row) for row in rows]


def due_polls(store: Store, accounts: Sequence[str], now: float, exclude: Collection[int]) -> list[Item]:
    """Items TikTok is processing whose next status check is due, the longest due first."""
    skip = sorted(exclude)
    rows = store.conn.execute(
        f"SELECT * FROM items WHERE account IN ({_marks(accounts)}) AND state = 'processing'"  # noqa: S608
        " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        f" AND id NOT IN ({_marks(skip)}) ORDER BY COALESCE(next_attempt_at, 0), id",
        (*accounts, now, *skip))
    return [_item(row) for row in rows]


def next_due_at(store: Store, accounts: Sequence[str], after: float) -> float | None:
    """The earliest ``next_attempt_at`` later than ``after`` among the accounts' open items (None: none).

    Walks the partial index ``items_open_due`` in time order and stops at the first of these accounts
    (``+account``: the account is checked on the rows, not used to pick the (account, state) index,
    which would read every queued item of a backlog)."""
    row = store.conn.execute(
        f"SELECT next_attempt_at FROM items WHERE next_attempt_at > ? AND state IN {_OPEN} AND"  # noqa: S608
        f" +account IN ({_marks(accounts)}) ORDER BY next_attempt_at LIMIT 1", (after, *accounts)).fetchone()
    return float(row[0]) if row and row[0] is not None else None


@dataclasses.dataclass(frozen=True, slots=True)
class Hold:
    """Why an account starts nothing new now: ``reason`` (a machine.WAIT_TEXT key), until when (None:
    until the user acts), and a line for ``status``."""

    reason: str
    until: float | None
    detail: str


def cap_frees_at(store: Store, account: str, mode: str, now: float, cap: int) -> float | None:
    """When TikTok's cap for the account's mode has room again by the ledger (None: it has room now).

    Inbox mode counts the drafts sent in 24 h against the pending-draft cap, direct mode the posts
    against the daily post cap; what was sent before the account's last ``resume`` does not count
    (the creator said the slots are free)."""
    if cap <= 0:
        return None   # no cap: the ledger is not read (the scheduler asks for every account on every pass)
    what = "post" if mode == "direct" else "draft"
    rows = store.conn.execute("SELECT what, at FROM ledger WHERE account = ? AND what IN ('resume', ?) AND at > ?"
                              " ORDER BY at", (account, what, now - machine.DAY)).fetchall()
    resumed = max((at for kind, at in rows if kind == "resume"), default=now - machine.DAY)
    return machine.cap_frees_at([at for kind, at in rows if kind == what and at > resumed], cap, now)


def account_states(store: Store, accounts: Sequence[str]) -> dict[str, AccountState]:
    """The waits and pauses of these accounts, in one read (an account never held has the defaults)."""
    states = {account: AccountState(account) for account in accounts}
    if accounts:
        rows = store.conn.execute(f"SELECT * FROM accounts WHERE account IN ({_marks(accounts)})",  # noqa: S608
                                  list(accounts))
        for row in rows:
            states[row["account"]] = AccountState(**{key: row[key] for key in row.keys()})  # noqa: SIM118
    return states


def account_hold(store: Store, account: str, mode: str, now: float, *, cap: int,
                 state: AccountState | None = None) -> Hold | None:
    """What holds the account's new uploads back now, most binding first: the user's pause, a lost
    sign-in, a pause or wait TikTok caused, the ``cap`` per 24 h the ledger foresees; None when nothing does."""
    state = state or store.account_state(account)
    if state.paused_code == USER_PAUSE:
        return Hold("paused_by_you", None, f"paused by you; `watchfolder resume {account}` lets it go on")
    if state.paused_code == "sign_in":
        return Hold("sign_in", None, f"sign in again: watchfolder auth login {account}")
    if state.wait_until and state.wait_until > now:
        reason = "paused" if state.paused_code else (state.wait_reason or "backoff")
        text = state.paused_message if state.paused_code else machine.wait_text(reason)
        return Hold(reason, state.wait_until, text or reason)
    frees = cap_frees_at(store, account, mode, now, cap)
    if frees is not None and frees > now:
        reason = "daily_posts" if mode == "direct" else "pending_share"
        return Hold(reason, frees, f"{machine.wait_text(reason)}; the ledger says a slot is free then "
                                   f"(`watchfolder resume {account}` once the drafts are posted)")
    return None


def lift_waits(store: Store, account: str, now: float) -> int:
    """``resume``: every wait of the account's items (backoff, caps, rate pacing, a pause) is over now;
    a scheduled ``publish_at`` and a lost sign-in stay. Return how many items are due again."""
    with store.transaction() as conn:
        cursor = conn.execute(
            "UPDATE items SET next_attempt_at = NULL, detail = NULL, retry_streak = 0, updated_at = ?"
            " WHERE account = ? AND state IN ('queued', 'waiting')"
            " AND COALESCE(wait_reason, '') NOT IN ('publish_at', 'sign_in')", (now, account))
    return int(cursor.rowcount)
