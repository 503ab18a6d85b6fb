"""A damaged token file holds its own account only: "sign in again" with the reason, everyone else goes on.

It used to crash-loop the worker (the pause handler reloaded the same file and raised inside itself),
log `init_orphaned` although nothing was sent, and make `status` and `auth list` exit 1 for every
account, which failed the container's health check too.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.harness import SCOPES, Rig, wait_for
from watchfolder import logs
from watchfolder.core.errors import AuthError
from watchfolder.media import samples
from watchfolder.ops import metrics
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenStore

SCRIPT = Path(sys.executable).parent / "watchfolder"
DAMAGE = {
    "truncated": b'{\n  "schema": 1,\n  "account": "alice",\n  "open_id": "-0001",\n  "access_tok',
    "garbage": bytes(range(256)) * 4,
    "wrong types": json.dumps({"open_id": ["x"], "access_token": {"a": 1}, "access_expires_at": "soon",
                               "refresh_token": 7, "refresh_expires_at": True, "scopes": "video.upload",
                               "updated_at": None}).encode(),
    "not an object": b'["act.1", "rft.1"]',
}


def cli(rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args, "-c", str(rig.config_path)], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, **rig.env})


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_kind_of_damage_is_an_auth_error_that_names_the_file_not_its_content(tmp_path: Path,
                                                                                  kind: str) -> None:
    store = TokenStore(tmp_path)
    store.check_permissions()
    (store.directory / "alice.json").write_bytes(DAMAGE[kind])

    with pytest.raises(AuthError) as caught:
        store.load("alice")

    assert caught.value.code == "tokens_unreadable"
    assert str(store.directory / "alice.json") in caught.value.message and "is damaged" in caught.value.message
    assert "act.1" not in caught.value.message and "rft.1" not in caught.value.message
    assert store.stamp("alice") is None   # what the daemon compares to see new tokens: never raises


def test_one_damaged_account_pauses_alone_and_every_report_still_answers(make_rig, tmp_path: Path) -> None:
    lines = io.StringIO()
    logs.configure("info", json=True, stream=lines)
    rig = make_rig(accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "inbox"}},
                   overrides={"metrics.listen": "127.0.0.1:0"})
    token_file = rig.state_dir / "tokens" / "alice.json"
    token_file.write_bytes(DAMAGE["truncated"])
    monitor = metrics.HealthMonitor()
    server = metrics.MetricsServer(rig.settings, monitor)
    rig.start([monitor, server])
    for account in ("alice", "bob"):
        samples.write_mp4(tmp_path / f"{account}.mp4", size=150_000)
        rig.drop(account, "clip.mp4", tmp_path / f"{account}.mp4")

    assert rig.wait_sidecar("bob", "clip.mp4")["result"] == "done"
    store = Store(rig.state_dir, readonly=True)
    try:
        wait_for(lambda: store.account_state("alice").paused_code == "sign_in", 15, what="alice paused")
        # The account's pause is recorded a moment before its item leaves uploading: wait for both.
        wait_for(lambda: store.items(account="alice")[0].state.value == "waiting", 15, what="alice's item parked")
        [item] = store.items(account="alice")
        assert (item.state.value, item.wait_reason, item.init_started_at, item.publish_id) == (
            "waiting", "sign_in", None, None)
    finally:
        store.close()

    shown = cli(rig, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    accounts = {row["account"]: row for row in json.loads(shown.stdout)["accounts"]}
    assert accounts["alice"]["signed_in"] is False
    assert "sign in again" in accounts["alice"]["note"] and f"{token_file} is damaged" in accounts["alice"]["note"]
    assert accounts["bob"]["note"] == "ok" and accounts["bob"]["done_today"] == 1
    listed = cli(rig, "auth", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"alice: {token_file} is damaged; sign in with: watchfolder auth login alice" in listed.stdout
    assert "bob: open_id" in listed.stdout
    checked = cli(rig, "check", "--json", "--offline")
    verdicts = {c["name"]: c["status"] for c in json.loads(checked.stdout)["checks"]}
    assert (verdicts["tokens:alice"], verdicts["tokens:bob"]) == ("fail", "ok")
    url = f"http://127.0.0.1:{server.port}"
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    scrape = requests.get(url + "/metrics", timeout=5).text
    assert 'watchfolder_signed_in{account="alice"} 0.0' in scrape
    assert 'watchfolder_signed_in{account="bob"} 1.0' in scrape

    events = [json.loads(line) for line in lines.getvalue().splitlines() if line.startswith("{")]
    names = [event["event"] for event in events]
    assert "account_needs_sign_in" in names
    assert not {"init_orphaned", "worker_crashed", "worker_failed", "item_unexpected_error"} & set(names), names
    assert names.count("account_needs_sign_in") == 1   # paused once, not once per loop pass
    rig.stop()


def test_signing_in_again_resumes_the_paused_account(make_rig, tmp_path: Path) -> None:
    rig = make_rig()
    user = rig.users["alice"]
    (rig.state_dir / "tokens" / "alice.json").write_bytes(DAMAGE["garbage"])
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=150_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    store = Store(rig.state_dir, readonly=True)
    try:
        wait_for(lambda: store.account_state("alice").paused_code == "sign_in", 15, what="alice paused")
        wait_for(lambda: store.items(account="alice")[0].wait_reason == "sign_in", 15, what="alice's item parked")
    finally:
        store.close()

    rig.store_tokens("alice", user.access_token, user.refresh_token, user.open_id, SCOPES)

    assert rig.wait_sidecar("alice", "clip.mp4")["result"] == "done"

