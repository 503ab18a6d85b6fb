"""The user's hold on an account: pause (nothing new starts for it) and resume (the pause and every wait of
the account are lifted). Written to the state database, so they work whether the daemon runs or not; used by
``watchfolder pause``/``resume`` and the status page's actions."""

from __future__ import annotations

from dataclasses import dataclass

from watchfolder.store import schedule
from watchfolder.store.store import Store


@dataclass(frozen=True)
class Resumed:
    due: int                # waiting items that are tried now
    needs_sign_in: bool     # the account is still held: only new tokens lift a lost sign-in


def pause(store: Store, account: str) -> None:
    store.set_account_state(account, paused_code=schedule.USER_PAUSE, paused_message="paused by you")


def resume(store: Store, account: str, now: float) -> Resumed:
    """Lift the pause and every wait of the account: TikTok's caps and probes, backoffs, rate pacing, and the
    ledger's count of drafts or posts sent so far (the creator posted the waiting drafts)."""
    state = store.account_state(account)
    fields: dict[str, object] = {"wait_until": None, "wait_reason": None, "wait_code": None, "probe_seconds": None}
    if state.paused_code != "sign_in":
        fields.update(paused_code=None, paused_message=None)
    store.set_account_state(account, **fields)
    store.ledger_add(account, "resume", now)
    return Resumed(due=schedule.lift_waits(store, account, now), needs_sign_in=state.paused_code == "sign_in")
