"""The status read model: what is queued, waiting (why, until when), uploading, and finished today.

One source for ``watchfolder status``, the health, notify and systemd hooks and ``check``.
"""

from __future__ import annotations

import datetime
from typing import Any

from watchfolder.config.settings import Settings
from watchfolder.core import machine, zones
from watchfolder.core.model import Item, State
from watchfolder.core.text import display_name, iso
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenStore

OPEN_STATES = (State.DETECTED, State.QUEUED, State.WAITING, State.UPLOADING, State.PROCESSING)
HEARTBEAT_STALE = 30.0


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


def item_row(item: Item, now: float, zone: datetime.tzinfo | None = None) -> dict[str, Any]:
    return {
        "id": item.id, "account": item.account, "name": display_name(item.result_name or item.name),
        "kind": item.kind, "state": str(item.state), "folder": item.folder,
        "percent": int(100 * item.uploaded_bytes / item.size) if item.size else 0,
        "wait_reason": item.wait_reason, "next_attempt_at": iso(item.next_attempt_at),
        "publish_at": iso(item.publish_at), "publish_id": item.publish_id,
        "error": item.error_code, "detail": item.detail, "summary": describe(item, now, zone),
        "detected_at": iso(item.detected_at), "updated_at": iso(item.updated_at),
    }


def account_rows(settings: Settings, store: Store, now: float) -> list[dict[str, Any]]:
    tokens = TokenStore(settings.state_dir)
    zone = settings.zone()
    day_start = now - 86400
    rows = []
    for account in settings.accounts:
        state = store.account_state(account.name)
        items = store.items(account=account.name)
        counts = {s: sum(1 for i in items if i.state is s) for s in State}
        finished_today = [i for i in items if i.state.finished and i.updated_at >= day_start]
        note = "ok"
        if state.paused_code == "sign_in":
            note = f"paused: sign in again: watchfolder auth login {account.name}"
        elif state.paused_code:
            note = f"paused: {state.paused_message or state.paused_code}; next try {_local(state.wait_until, zone)}"
        elif state.wait_until and state.wait_until > now:
            note = f"waiting: {machine.wait_text(state.wait_reason)}; next try {_local(state.wait_until, zone)}"
        held = tokens.load(account.name)
        direct = str(account.mode) == "direct"
        sent_24h = len(store.ledger_times(account.name, "post" if direct else "draft", now - 86400))
        cap = machine.DAILY_POST_CAP if direct else machine.PENDING_DRAFT_CAP
        rows.append({
            "account": account.name, "mode": str(account.mode), "note": note,
            "queued": counts[State.QUEUED] + counts[State.DETECTED], "waiting": counts[State.WAITING],
            "uploading": counts[State.UPLOADING], "processing": counts[State.PROCESSING],
            "done_today": sum(1 for i in finished_today if i.state is State.DONE),
            "failed_today": sum(1 for i in finished_today if i.state is State.FAILED),
            "sent_24h": sent_24h,
            # As far as we know: TikTok counts drafts the creator has not posted yet, and posts from other apps.
            "budget_left": max(0, cap - sent_24h),
            "budget_text": f"{'posts' if direct else 'drafts'} sent in 24 h: {sent_24h} of about {cap}",
            "signed_in": held is not None,
            "wait_until": iso(state.wait_until), "wait_reason": state.wait_reason, "paused": state.paused_code,
        })
    return rows


def collect(settings: Settings, now: float) -> dict[str, Any]:
    if not (settings.state_dir / "watchfolder.sqlite3").exists():
        return {"daemon": None, "accounts": [], "items": [], "notices": [],
                "message": "no state yet: `watchfolder run` has not started on this state_dir"}
    store = Store(settings.state_dir, readonly=True)
    try:
        live = store.runtime("daemon")
        daemon = None
        if live is not None:
            info, at = live
            daemon = {"running": now - at < HEARTBEAT_STALE, "heartbeat": iso(at), "pid": info.get("pid"),
                      "observers": info.get("observers", [])}
        open_items = store.items(states=OPEN_STATES)
        recent = [i for i in store.finished_since(now - 86400) if i.state in (State.DONE, State.FAILED)]
        return {
            "daemon": daemon,
            "accounts": account_rows(settings, store, now),
            "items": [item_row(i, now, settings.zone()) for i in open_items + recent[-50:]],
            "notices": live[0].get("notices", []) if live else [],
        }
    finally:
        store.close()
