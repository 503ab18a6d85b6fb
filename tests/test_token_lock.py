"""One account's tokens, one writer at a time across processes (``tokens/<account>.lock``, flock).

A refresh in the daemon used to overwrite a sign-in made meanwhile by `auth import` or `auth login`
in another process: the new login was lost, replaced by a renewal of the grant it was meant to replace.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.harness import SCOPES, Rig, wait_for
from watchfolder import logs
from watchfolder.media import samples
from watchfolder.tiktok.tokens import Tokens, TokenStore

SCRIPT = Path(sys.executable).parent / "watchfolder"


def lock_is_held(path: Path) -> bool:
    """True while another open file holds ``path``'s flock (the daemon mid-refresh)."""
    if not path.exists():
        return False
    with open(path, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def expiring_soon(rig: Rig) -> None:
    """Give alice an access token inside the renewal margin: the daemon refreshes before its first call."""
    user = rig.users["alice"]
    rig.store_tokens("alice", user.access_token, user.refresh_token, user.open_id, SCOPES, expires_in=60)


def test_auth_import_waits_for_the_daemons_refresh_and_the_new_login_is_kept(make_rig, tmp_path):
    rig = make_rig()
    expiring_soon(rig)
    # The renewal takes a while at TikTok: long enough for `auth import` to start, even on a busy machine.
    rig.emulator.faults.fail_next("token", kind="slow", delay=8.0)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=150_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    lock = rig.state_dir / "tokens" / "alice.lock"
    wait_for(lambda: lock_is_held(lock), 15, interval=0.01, what="the daemon refreshing under the lock")

    user = rig.users["alice"]
    state = rig.emulator.state
    with state.lock:   # the user signs in anew elsewhere: a second grant, while the daemon renews the first
        access, refresh = state.accounts.issue(user, SCOPES, rig.emulator.clock.now())
    answer = json.dumps({"access_token": access.token, "refresh_token": refresh.token, "open_id": user.open_id,
                         "scope": ",".join(SCOPES), "expires_in": 86400, "refresh_expires_in": 31536000})
    result = subprocess.run([str(SCRIPT), "auth", "import", "alice", "-c", str(rig.config_path)], input=answer,
                            capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **rig.env})

    assert result.returncode == 0, result.stderr
    assert "waiting" in result.stderr   # it met the daemon's refresh, and waited for it
    assert rig.wait_sidecar("alice", "clip.mp4")["result"] == "done"
    stored = TokenStore(rig.state_dir).load("alice")
    assert stored is not None
    assert stored.refresh_token == refresh.token   # not the renewal of the first grant


def test_a_refresh_whose_grant_was_replaced_meanwhile_is_discarded(make_rig, tmp_path):
    lines = io.StringIO()
    logs.configure("info", json=True, stream=lines)
    rig = make_rig()
    expiring_soon(rig)
    rig.emulator.faults.fail_next("token", kind="slow", delay=3.0)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=150_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: lock_is_held(rig.state_dir / "tokens" / "alice.lock"), 15, interval=0.01,
             what="the daemon refreshing under the lock")

    # A writer that does not take the lock (an older watchfolder, a restored backup) replaces the file.
    relinked = rig.emulator.add_user("alice-relinked", scopes=SCOPES)
    now = rig.emulator.clock.now()
    TokenStore(rig.state_dir).save(Tokens("alice", relinked.open_id, relinked.access_token, now + 86400,
                                          relinked.refresh_token, now + 365 * 86400, SCOPES, now))

    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    assert sidecar["result"] == "done"
    stored = TokenStore(rig.state_dir).load("alice")
    assert stored is not None and stored.refresh_token == relinked.refresh_token
    events = [json.loads(line) for line in lines.getvalue().splitlines() if line.startswith("{")]
    assert "token_refresh_discarded" in [event["event"] for event in events]
    # The post went out on the new sign-in, not on the renewal that was thrown away.
    assert [p.open_id for p in rig.emulator.records.publishes] == [relinked.open_id]
