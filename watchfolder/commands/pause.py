"""``watchfolder pause ACCOUNT`` and ``watchfolder resume ACCOUNT``: the user holds an account, or lets it go on.

Both write the state database directly, so they work whether the daemon runs or not; a running
daemon sees the change on its next look at the database (within about a second). A pause lasts
across restarts. ``resume`` lifts the pause and every wait of the account: TikTok's caps and
probes, backoffs, rate pacing, and the ledger's count of drafts or posts sent so far (the creator
posted the waiting drafts); a lost sign-in is lifted only by new tokens.
"""

from __future__ import annotations

import time

from watchfolder.config.settings import Settings
from watchfolder.core.errors import UsageError
from watchfolder.store import schedule
from watchfolder.store.store import Store


def _account(settings: Settings, name: str) -> str:
    names = [account.name for account in settings.accounts]
    if name not in names:
        raise UsageError(f"no account '{name}' in the config (accounts: {', '.join(names)})")
    return name


def pause(settings: Settings, name: str, *, now: float | None = None) -> int:
    account = _account(settings, name)
    store = Store(settings.state_dir)
    try:
        store.set_account_state(account, paused_code=schedule.USER_PAUSE, paused_message="paused by you")
    finally:
        store.close()
    print(f"{account}: paused; nothing new starts for it (an upload under way stops after its chunk) "
          f"until `watchfolder resume {account}`")
    return 0


def resume(settings: Settings, name: str, *, now: float | None = None) -> int:
    account = _account(settings, name)
    stamp = time.time() if now is None else now
    store = Store(settings.state_dir)
    try:
        state = store.account_state(account)
        fields: dict[str, object] = {"wait_until": None, "wait_reason": None, "wait_code": None,
                                     "probe_seconds": None}
        if state.paused_code != "sign_in":
            fields.update(paused_code=None, paused_message=None)
        store.set_account_state(account, **fields)
        store.ledger_add(account, "resume", stamp)
        due = schedule.lift_waits(store, account, stamp)
    finally:
        store.close()
    if state.paused_code == "sign_in":
        print(f"{account}: waits lifted, but it still needs a sign-in: watchfolder auth login {account}")
    else:
        print(f"{account}: resumed; {due} waiting item(s) are tried now")
    return 0
