"""The status read model: what is queued, waiting (why, until when), uploading, and finished today.

One source for ``watchfolder status``, the systemd hook's STATUS= line and ``check``. Counts come from
aggregate queries (``store/queries.py``) on the ``(account, state)`` index, never from loading every
item; ``collect`` opens its own read-only connection (for the CLI), ``live_summary`` reads through the
daemon's hook view, on the main loop's connection (every few seconds under systemd).
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from typing import Any

from watchfolder import zones
from watchfolder.config.settings import Settings
from watchfolder.core import machine
from watchfolder.core.errors import AuthError, StoreError
from watchfolder.core.model import Item, State
from watchfolder.core.text import display_name, iso, printable
from watchfolder.ops import progress
from watchfolder.ops.notify import post_url
from watchfolder.store import queries, schedule, statelock
from watchfolder.store.queries import OPEN_STATES, Reader
from watchfolder.store.store import AccountState, Store
from watchfolder.tiktok import codes
from watchfolder.tiktok.tokens import TokenStore

RECENT = 50   # how many items finished in the last 24 h status lists (the latest)


def _local(epoch: float | None, zone: datetime.tzinfo | None = None) -> str:
    """``2026-12-03 18:00 CET``: local time in ``zone`` (default: $TZ, else the system's), with the zone."""
    return zones.shown(epoch, zone or zones.resolve(None))


def describe(item: Item, now: float, zone: datetime.tzinfo | None = None) -> str:
    """One line on where an item is and why, times in ``zone``."""
    if item.state is State.WAITING:
        if item.wait_reason == "sign_in":
            return f"waiting: sign in again: watchfolder auth login {item.account}"
        if item.wait_reason == "publish_at":
            return f"scheduled for {_local(item.publish_at, zone)}"
        text = machine.wait_text(item.wait_reason)
        until = f"; next try {_local(item.next_attempt_at, zone)}" if item.next_attempt_at else ""
        return f"waiting: {text}{until}"
    if item.state is State.UPLOADING and item.size:
        return f"uploading {int(100 * item.uploaded_bytes / item.size)}%"
    if item.state is State.PROCESSING:
        return f"TikTok is processing ({item.status or 'sent'})"
    if item.state is State.FAILED:
        return f"failed: {item.error_code}: {item.error_message or ''}".strip()
    if item.state is State.DONE:
        return f"done: {item.status or ''}".strip()
    return str(item.state)


def advice(code: str | None) -> str | None:
    """The one sentence of docs/tiktok-errors.md for a code (an error code or a fail_reason), None for no code."""
    if not code:
        return None
    known = codes.POLICY.get(code) or codes.FAIL_REASONS.get(code)
    return known.advice if known is not None else None


def media_text(media: dict[str, Any] | None) -> str:
    """What the probe read, in a few words: "h264 1080x1920 30 fps 12.0 s aac"."""
    if not media:
        return ""
    parts = [media.get("codec") or media.get("container") or "?"]
    if media.get("width") and media.get("height"):
        parts.append(f"{media['width']}x{media['height']}")
    if media.get("fps"):
        parts.append(f"{media['fps']:g} fps")
    if media.get("duration_s") is not None:
        parts.append(f"{media['duration_s']:.1f} s")
    parts.append(media.get("audio") or "no audio")
    return " ".join(str(p) for p in parts)


def item_row(item: Item, now: float, zone: datetime.tzinfo | None = None,
             entered: float | None = None) -> dict[str, Any]:
    """``entered``: when the item entered its state (for speed, time left and time in processing)."""
    figures = progress.figures(item, entered, now)
    extra = progress.summary(item, figures)
    media = json.loads(item.media) if item.media else None
    post_ids = [str(p) for p in json.loads(item.post_ids or "[]")]
    return {
        **figures, "id": item.id, "account": item.account, "name": display_name(item.result_name or item.name),
        "kind": item.kind, "state": str(item.state), "folder": item.folder,
        "percent": int(100 * item.uploaded_bytes / item.size) if item.size else 0,
        "wait_reason": item.wait_reason, "next_attempt_at": iso(item.next_attempt_at),
        "publish_at": iso(item.publish_at), "publish_id": item.publish_id,
        # A detail or message may quote a name's stray bytes: shown as \xNN, so the output is UTF-8.
        "error": item.error_code, "detail": printable(item.detail) if item.detail else item.detail,
        "message": printable(item.error_message) if item.error_message else None,
        "advice": advice(item.error_code) if item.state is State.FAILED else None,
        "post_url": post_url(post_ids[0]) if post_ids else None,
        "summary": printable(describe(item, now, zone) + (f" ({extra})" if extra else "")),
        "detected_at": iso(item.detected_at), "updated_at": iso(item.updated_at),
        "media": media, "media_text": media_text(media), "warnings": json.loads(item.warnings or "[]"),
    }


def _account_note(account: str, state: AccountState, now: float, zone: datetime.tzinfo,
                  token_problem: str | None = None, hold: schedule.Hold | None = None) -> str:
    if state.paused_code == "sign_in":
        why = token_problem or state.paused_message
        return f"paused: sign in again: {why}" if why else f"paused: sign in again: watchfolder auth login {account}"
    if token_problem:
        return f"sign in again: {token_problem}"
    if state.paused_code == schedule.USER_PAUSE:
        return f"paused by you (watchfolder resume {account})"
    if state.paused_code:
        return f"paused: {state.paused_message or state.paused_code}; next try {_local(state.wait_until, zone)}"
    if state.wait_until and state.wait_until > now:
        return f"waiting: {machine.wait_text(state.wait_reason)}; next try {_local(state.wait_until, zone)}"
    if hold is not None:
        return f"waiting: {machine.wait_text(hold.reason)}; next try {_local(hold.until, zone)}"
    return "ok"


def held_row(row: dict[str, Any], item: Item, hold: schedule.Hold | None, zone: datetime.tzinfo) -> dict[str, Any]:
    """An item that waits its turn while its account is held shows the account's reason and next try,
    never a bare "queued"; a later ``publish_at`` or a lost sign-in of its own stays."""
    if hold is None or item.state not in (State.QUEUED, State.WAITING) \
            or item.wait_reason in ("publish_at", "sign_in"):
        return row
    until = max(filter(None, (hold.until, item.next_attempt_at)), default=None) if hold.until else None
    when = f"; next try {_local(until, zone)}" if until else ""
    return {**row, "wait_reason": hold.reason, "detail": hold.detail, "next_attempt_at": iso(until),
            "summary": f"waiting: {hold.detail}{when}"}


def account_rows(settings: Settings, store: Store, now: float) -> list[dict[str, Any]]:
    """One row per configured account: counts by state (aggregates, not the items), waits, budget, sign-in."""
    tokens = TokenStore(settings.state_dir)
    zone = settings.zone()
    names = [account.name for account in settings.accounts]
    counts = queries.counts_by_state(store, names, OPEN_STATES)
    today = queries.finished_counts_since(store, names, now - 86400)
    rows = []
    for account in settings.accounts:
        name = account.name
        state = store.account_state(name)
        try:
            held, token_problem = tokens.load(name), None
        except AuthError as exc:   # a damaged token file holds this account only, and says why
            held, token_problem = None, exc.message
        direct = str(account.mode) == "direct"
        sent_24h = queries.ledger_count(store, name, "post" if direct else "draft", now - 86400)
        cap = settings.daily_cap(str(account.mode)) or (machine.DAILY_POST_CAP if direct else machine.PENDING_DRAFT_CAP)
        hold = schedule.account_hold(store, name, str(account.mode), now, state=state,
                                     cap=settings.daily_cap(str(account.mode)))
        rows.append({
            "account": name, "mode": str(account.mode),
            "note": _account_note(name, state, now, zone, token_problem, hold),
            "queued": counts[(name, "queued")], "waiting": counts[(name, "waiting")],
            "uploading": counts[(name, "uploading")], "processing": counts[(name, "processing")],
            "done_today": today[(name, "done")], "failed_today": today[(name, "failed")],
            "sent_24h": sent_24h,
            # As far as we know: TikTok counts drafts the creator has not posted yet, and posts from other apps.
            "budget_left": max(0, cap - sent_24h),
            "budget_text": f"{'posts' if direct else 'drafts'} sent in 24 h: {sent_24h} of about {cap}",
            "signed_in": held is not None, "tokens_problem": token_problem,
            "signed_in_until": iso(held.refresh_expires_at) if held is not None else None,
            "wait_until": iso(state.wait_until), "wait_reason": state.wait_reason, "paused": state.paused_code,
        })
    return rows


def _entered(store: Store, item: Item) -> float | None:
    """When an uploading or processing item entered that state (its last such event)."""
    if item.state not in (State.UPLOADING, State.PROCESSING):
        return None
    times = [event["at"] for event in store.history(item.id) if event["state"] == str(item.state)]
    return times[-1] if times else None


def collect(settings: Settings, now: float, queue_limit: int | None = None) -> dict[str, Any]:
    """Everything ``watchfolder status`` shows, from a read-only connection of its own; with ``queue_limit``,
    only the first that many queued or waiting items of each account (the status page's view)."""
    if not (settings.state_dir / "watchfolder.sqlite3").exists():
        return {"daemon": None, "accounts": [], "items": [], "notices": [],
                "message": "no state yet: `watchfolder run` has not started on this state_dir"}
    store = Store(settings.state_dir, readonly=True)
    try:
        return _collect(settings, store, now, queue_limit)
    except sqlite3.DatabaseError as exc:
        path = settings.state_dir / "watchfolder.sqlite3"
        raise StoreError(f"the state database {path} cannot be read ({exc}): stop the daemon, then restore it from a "
                         "backup, or move it aside to start fresh (the folders are the truth)") from None
    finally:
        store.close()


def _collect(settings: Settings, store: Store, now: float, queue_limit: int | None = None) -> dict[str, Any]:
    """The report from an open store (``collect`` turns a damaged database into a StoreError that says what to do)."""
    live = store.runtime("daemon")
    daemon = None
    if live is not None:
        info, at = live
        # Running: it holds its state lock (it writes nothing while idle, so no row's age can tell).
        daemon = {"running": statelock.held(settings.state_dir, info.get("pid")), "heartbeat": iso(at),
                  "pid": info.get("pid"),
                  "observers": info.get("observers", [])}
    names = [account.name for account in settings.accounts]
    if queue_limit is None:
        unfinished = queries.open_items(store, names)
    else:
        moving = queries.open_items(store, names, (State.UPLOADING, State.PROCESSING))
        waiting = [item for name in names
                   for item in queries.open_items(store, [name], (State.QUEUED, State.WAITING), queue_limit)]
        unfinished = sorted(moving + waiting, key=lambda item: (item.detected_at, item.id))
    shown = unfinished + queries.recently_finished(store, names, now - 86400, RECENT)
    holds = {a.name: schedule.account_hold(store, a.name, str(a.mode), now, cap=settings.daily_cap(str(a.mode)))
             for a in settings.accounts}
    zone = settings.zone()
    return {
        "daemon": daemon,
        "accounts": account_rows(settings, store, now),
        "items": [held_row(item_row(i, now, zone, _entered(store, i)), i, holds.get(i.account), zone) for i in shown],
        "notices": live[0].get("notices", []) if live else [],
    }


def live_summary(settings: Settings, state: Reader, now: float) -> dict[str, Any]:
    """What the systemd STATUS= line needs, read on the daemon's own connection: each account's counts of
    unfinished items and its wait, and the uploads under way (a few rows, whatever the history holds).

    The same shape as ``collect``'s "accounts" and "items", with only those fields.
    """
    counts = state.counts_by_state(OPEN_STATES)
    accounts = []
    for account in settings.accounts:
        name = account.name
        held = state.account_state(name)
        accounts.append({
            "account": name, "queued": counts[(name, "queued")],
            "waiting": counts[(name, "waiting")], "uploading": counts[(name, "uploading")],
            "processing": counts[(name, "processing")], "paused": held.paused_code,
            "wait_until": iso(held.wait_until), "wait_reason": held.wait_reason,
        })
    uploading = state.open_items((State.UPLOADING,))
    return {"accounts": accounts, "items": [item_row(i, now, settings.zone()) for i in uploading]}
