"""Accounts that stay signed in, through the running daemon: refresh mid-run, a lost grant, no secret leaks."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from tests.harness import Rig, wait_for
from watchfolder import cli
from watchfolder.media import samples
from watchfolder.store.store import Store

SCRIPT = Path(sys.executable).parent / "watchfolder"


def video(tmp_path: Path, name: str, seed: int) -> Path:
    path = tmp_path / name
    samples.write_mp4(path, size=80_000 + seed, seed=seed)
    return path


def test_an_access_token_expiring_mid_run_costs_exactly_one_refresh(make_rig, tmp_path):
    rig = make_rig()
    rig.start()
    rig.drop("alice", "one.mp4", video(tmp_path, "one.mp4", 1))
    rig.wait_sidecar("alice", "one.mp4")
    rig.emulator.expire_access_token(rig.users["alice"].open_id)
    rig.drop("alice", "two.mp4", video(tmp_path, "two.mp4", 2))
    rig.wait_sidecar("alice", "two.mp4")
    refreshes = [r for r in rig.emulator.records.refreshes if r.ok]
    assert len(refreshes) == 1
    rejected = [r for r in rig.emulator.records.requests if r.error_code == "access_token_invalid"]
    assert len(rejected) == 1


def test_a_lost_grant_pauses_one_account_and_new_tokens_resume_it_without_a_restart(make_rig, tmp_path,
                                                                                     monkeypatch, capsys):
    rig = make_rig(accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "inbox"}})
    alice = rig.users["alice"]
    # Alice's access token is about to expire, so the daemon refreshes first; TikTok answers invalid_grant.
    rig.store_tokens("alice", alice.access_token, alice.refresh_token, alice.open_id,
                     ("user.info.basic", "video.upload"), expires_in=5)
    rig.emulator.faults.fail_next("token", error_code="invalid_grant")
    rig.start()
    rig.drop("alice", "a.mp4", video(tmp_path, "a.mp4", 3))
    rig.drop("bob", "b.mp4", video(tmp_path, "b.mp4", 4))
    rig.wait_sidecar("bob", "b.mp4")

    def paused():
        store = Store(rig.state_dir, readonly=True)
        try:
            return store.account_state("alice").paused_code == "sign_in"
        finally:
            store.close()

    wait_for(paused, 15, what="alice paused for sign-in")
    assert (rig.folder("alice", "inbox") / "a.mp4").exists()
    from watchfolder.ops import report

    data = report.collect(rig.settings, rig.emulator.clock.now())
    alice_row = next(a for a in data["accounts"] if a["account"] == "alice")
    assert "watchfolder auth login alice" in alice_row["note"]
    # The user signs in again elsewhere and imports the tokens; the daemon picks them up by itself.
    monkeypatch.setenv("WATCHFOLDER_CLIENT_SECRET", rig.env["WATCHFOLDER_CLIENT_SECRET"])
    code = cli.main(["auth", "import", "alice", "--access-token", alice.access_token, "--refresh-token",
                     alice.refresh_token, "--open-id", alice.open_id, "--scope", "user.info.basic,video.upload",
                     "-c", str(rig.config_path)])
    assert code == 0
    assert alice.access_token not in capsys.readouterr().out
    rig.wait_sidecar("alice", "a.mp4")


def test_a_debug_run_leaks_no_token_and_no_secret(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator, accounts={"alice": {"mode": "inbox"}}, overrides={"log_level": "debug"})
    user = rig.users["alice"]
    # A short-lived access token: the run refreshes (with rotation) at least once.
    rig.store_tokens("alice", user.access_token, user.refresh_token, user.open_id,
                     ("user.info.basic", "video.upload", "video.publish"), expires_in=5)
    secrets_before = {user.access_token, user.refresh_token, emulator.config.client_secret}
    env = {**os.environ, **rig.env}
    daemon = subprocess.Popen([str(SCRIPT), "run", "-c", str(rig.config_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rig.folder("alice", "inbox").exists(), 15)
        rig.drop("alice", "clip.mp4", video(tmp_path, "clip.mp4", 5))
        wait_for(lambda: (rig.folder("alice", "done") / "clip.mp4.json").exists(), 30, what="done")
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=20)
    assert daemon.returncode == 0
    secrets = secrets_before | {user.access_token, user.refresh_token}
    assert [r for r in emulator.records.refreshes if r.ok], "the run was meant to refresh a token"
    status_out = subprocess.run([str(SCRIPT), "status", "--json", "-c", str(rig.config_path)], env=env,
                                capture_output=True, text=True, check=True).stdout
    auth_out = subprocess.run([str(SCRIPT), "auth", "list", "-c", str(rig.config_path)], env=env,
                              capture_output=True, text=True, check=True).stdout
    sidecar = (rig.folder("alice", "done") / "clip.mp4.json").read_text()
    assert '"level": "debug"' in err, "the daemon was meant to log at debug level"
    for text, where in ((out + err, "logs"), (status_out, "status --json"), (auth_out, "auth list"),
                        (sidecar, "sidecar")):
        for secret in secrets:
            assert secret not in text, f"a token or the client secret appears in {where}"
    assert "alice" in auth_out and "video.upload" in auth_out
    token_file = rig.state_dir / "tokens" / "alice.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert json.loads(token_file.read_text())["refresh_token"] == user.refresh_token   # the rotated one
    assert yaml.safe_load(rig.config_path.read_text())["log_level"] == "debug"
