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
from watchfolder.daemon import holds
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
        holds.pause(store, account)
    finally:
        store.close()
    print(f"{account}: paused; nothing new starts for it (an upload under way stops after its chunk) "
          f"until `watchfolder resume {account}`")
    return 0


def resume(settings: Settings, name: str, *, now: float | None = None) -> int:
    account = _account(settings, name)
    store = Store(settings.state_dir)
    try:
        resumed = holds.resume(store, account, time.time() if now is None else now)
    finally:
        store.close()
    if resumed.needs_sign_in:
        print(f"{account}: waits lifted, but it still needs a sign-in: watchfolder auth login {account}")
    else:
        print(f"{account}: resumed; {resumed.due} waiting item(s) are tried now")
    return 0
