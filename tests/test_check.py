"""``watchfolder check`` against the emulator and real folders: each problem it reports, how it says so, its exit
codes, and that it never prints a token or the client secret."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests import privdrop
from tests.emulator_fixture import running_emulator
from tests.harness import Rig
from watchfolder.commands import check
from watchfolder.emulator.clock import OffsetClock
from watchfolder.fsinfo import Mount
from watchfolder.media import samples
from watchfolder.ops import doctor
from watchfolder.tiktok.tokens import Tokens, TokenStore

LOCAL = [Mount("/", "ext4", "/dev/sda1")]
ROOMY = {"max_user_watches": 524288, "max_user_instances": 512, "max_queued_events": 16384}


def run_check(rig: Rig, *, offline: bool = False, mounts: list[Mount] | None = None,
              limits: dict[str, int | None] | None = None, now: float | None = None,
              config_path: Path | None = None) -> tuple[int, dict[str, Any], str]:
    """Run the command with --json; return (exit code, {check name: check}, the raw output)."""
    out = io.StringIO()
    args = argparse.Namespace(config=str(config_path or rig.config_path), json=True, offline=offline)
    code = check.main(args, env=rig.env, out=out, mounts=LOCAL if mounts is None else mounts,
                      inotify_limits=ROOMY if limits is None else limits, now=now)
    report = json.loads(out.getvalue())
    assert report["ok"] is (code == 0)
    assert all(set(c) == {"name", "status", "message"} and c["status"] in ("ok", "warn", "fail")
               for c in report["checks"])
    return code, {c["name"]: c for c in report["checks"]}, out.getvalue()


def save_tokens(rig: Rig, account: str, *, scopes: tuple[str, ...], refresh_in: float, access_in: float = 3600,
                user: Any = None) -> None:
    now = rig.emulator.clock.now()
    store = TokenStore(rig.state_dir)
    store.check_permissions()
    store.save(Tokens(account=account, open_id=user.open_id if user else "-x",
                      access_token=user.access_token if user else "act.never-shown",
                      access_expires_at=now + access_in, refresh_token=user.refresh_token if user else "rft.never",
                      refresh_expires_at=now + refresh_in, scopes=scopes, updated_at=now))


def test_a_healthy_setup_is_all_ok_and_never_shows_a_secret(make_rig):
    rig = make_rig(overrides={"tiktok.init_per_minute": 6, "tiktok.status_per_minute": 30,
                              "tiktok.creator_info_per_minute": 20})
    code, checks, raw = run_check(rig)
    assert code == 0, raw
    assert [c for c in checks.values() if c["status"] != "ok"] == []
    assert "drafts only" in checks["tiktok:alice"]["message"]
    assert checks["scopes:alice"]["status"] == "ok" and checks["clock"]["status"] == "ok"
    user = rig.users["alice"]
    for secret in (user.access_token, user.refresh_token, rig.emulator.config.client_secret):
        assert secret not in raw
    text = io.StringIO()
    assert check.main(argparse.Namespace(config=str(rig.config_path), json=False, offline=False), env=rig.env,
                      out=text, mounts=LOCAL, inotify_limits=ROOMY) == 0
    assert text.getvalue().rstrip().endswith("All good.")
    assert text.getvalue().startswith("ok    config")


def test_an_unaudited_app_is_recognised_as_private_only(tmp_path):
    with running_emulator(clock=OffsetClock(), unaudited=True) as emu:
        rig = Rig(tmp_path, emu, accounts={"bob": {"mode": "direct", "defaults": {"privacy_level": "SELF_ONLY"}},
                                           "carol": {"mode": "direct",
                                                     "defaults": {"privacy_level": "PUBLIC_TO_EVERYONE"}}},
                  sign_in=False)
        rig.sign_in("bob", private_account=True, privacy_level_options=("SELF_ONLY",))
        rig.sign_in("carol", private_account=True, privacy_level_options=("SELF_ONLY",))
        code, checks, raw = run_check(rig)
    assert checks["tiktok:bob"]["status"] == "warn"
    assert checks["tiktok:bob"]["message"].startswith("private only") and "audit" in checks["tiktok:bob"]["message"]
    assert checks["tiktok:carol"]["status"] == "fail"
    assert "PUBLIC_TO_EVERYONE is not offered" in checks["tiktok:carol"]["message"]
    assert "set one of SELF_ONLY" in checks["tiktok:carol"]["message"]
    assert code == 1


def test_a_public_account_in_direct_mode_is_told_about_the_audit(make_rig):
    rig = make_rig(accounts={"dan": {"mode": "direct", "defaults": {"privacy_level": "SELF_ONLY"}}})
    code, checks, _ = run_check(rig)
    message = checks["tiktok:dan"]["message"]
    assert checks["tiktok:dan"]["status"] == "ok" and message.startswith("public posts possible")
    assert "unaudited_client_can_only_post_to_private_accounts" in message and code == 0


def test_a_missing_scope_for_the_mode_is_a_problem(make_rig):
    rig = make_rig(accounts={"erin": {"mode": "direct", "defaults": {"privacy_level": "SELF_ONLY"}}}, sign_in=False)
    rig.sign_in("erin", scopes=("user.info.basic", "video.upload"))
    code, checks, _ = run_check(rig)
    assert code == 1
    assert checks["scopes:erin"]["status"] == "fail"
    assert "video.publish" in checks["scopes:erin"]["message"] and "watchfolder auth login erin" in \
        checks["scopes:erin"]["message"]
    assert "tiktok:erin" not in checks, "TikTok is not asked with a sign-in that cannot post"


def test_an_expired_sign_in_fails_an_expiring_one_warns_and_a_stale_access_token_is_not_renewed(make_rig):
    rig = make_rig(accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "inbox"}, "carol": {"mode": "inbox"}},
                   sign_in=False)
    save_tokens(rig, "alice", scopes=("user.info.basic", "video.upload"), refresh_in=-60)
    save_tokens(rig, "bob", scopes=("user.info.basic", "video.upload"), refresh_in=3 * 86400)
    carol = rig.emulator.add_user("carol", scopes=("user.info.basic", "video.upload"))
    save_tokens(rig, "carol", scopes=("user.info.basic", "video.upload"), refresh_in=300 * 86400, access_in=-10,
                user=carol)
    code, checks, _ = run_check(rig)
    assert code == 1
    assert checks["tokens:alice"]["status"] == "fail" and "expired" in checks["tokens:alice"]["message"]
    assert checks["tokens:bob"]["status"] == "warn" and "expires in 3.0 days" in checks["tokens:bob"]["message"]
    assert checks["tiktok:carol"]["status"] == "warn" and "never renews" in checks["tiktok:carol"]["message"]
    assert list(rig.emulator.records.refreshes) == [], "check renewed nothing"


def test_an_unreachable_media_host_fails_and_a_reachable_one_passes(make_rig):
    free = [_free_port(), _free_port()]
    rig = make_rig(overrides={"media_host.url_prefix": f"http://127.0.0.1:{free[0]}/tiktok/",
                              "media_host.serve": f"127.0.0.1:{free[1]}"})
    code, checks, _ = run_check(rig)
    assert checks["media_host"]["status"] == "fail" and "nothing answered" in checks["media_host"]["message"]
    assert code == 1
    good = make_rig(overrides={"media_host.url_prefix": f"http://127.0.0.1:{free[1]}/tiktok/",
                               "media_host.serve": f"127.0.0.1:{free[1]}"}, sign_in=False)
    _, checks, _ = run_check(good)
    assert checks["media_host"]["status"] == "ok", checks["media_host"]


def test_a_state_dir_on_a_network_share_fails_unless_allowed(make_rig):
    rig = make_rig()
    share = [*LOCAL, Mount(str(rig.state_dir.parent), "nfs4", "nas:/export")]
    code, checks, _ = run_check(rig, mounts=share)
    assert code == 1 and checks["state_dir"]["status"] == "fail"
    assert "network filesystem (nfs4" in checks["state_dir"]["message"]
    assert "allow_network_state_dir" in checks["state_dir"]["message"]
    assert checks["watch:alice"]["message"].startswith("polling: the inbox is on nfs4")
    allowed = make_rig(overrides={"allow_network_state_dir": True}, sign_in=False)
    share = [*LOCAL, Mount(str(allowed.state_dir.parent), "nfs4", "nas:/export")]
    _, checks, _ = run_check(allowed, mounts=share)
    assert checks["state_dir"]["status"] == "warn"


def test_config_warnings_inline_secret_rates_above_the_documented_limits_and_draft_titles(make_rig, tmp_path):
    rig = make_rig(accounts={"alice": {"mode": "inbox", "defaults": {"title": "cats"}}},
                   overrides={"tiktok.client_secret": "inline-secret-value", "tiktok.init_per_minute": 12,
                              "tiktok.status_per_minute": 30})
    rig.env = {}  # so the inline secret is the one used
    code, checks, raw = run_check(rig, offline=True)
    assert code == 0
    assert checks["client_secret"]["status"] == "warn" and "client_secret_file" in checks["client_secret"]["message"]
    rates = checks["rate_limits"]["message"]
    assert "init_per_minute is 12, above TikTok's documented 6" in rates
    assert "creator_info_per_minute is 0 (no limit)" in rates and "status_per_minute" not in rates
    assert checks["defaults:alice"]["status"] == "warn" and "no caption for drafts" in checks["defaults:alice"][
        "message"]
    assert "inline-secret-value" not in raw
    assert "tiktok:alice" not in checks and "not compared" in checks["clock"]["message"]


def test_captions_waiting_in_an_inbox_mode_inbox_are_named(make_rig, tmp_path):
    rig = make_rig(accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "direct"}}, sign_in=False)
    for account in ("alice", "bob"):
        inbox = rig.folder(account, "inbox")
        inbox.mkdir(parents=True)
        samples.write_mp4(inbox / "clip.mp4", size=100_000)
        (inbox / "clip.yaml").write_text("title: hello\nprivacy_level: SELF_ONLY\n")
    _, checks, _ = run_check(rig, offline=True)
    assert checks["captions:alice"]["status"] == "warn"
    assert checks["captions:alice"]["message"].startswith("alice: clip.yaml set a caption")
    assert "captions:bob" not in checks


def test_low_inotify_limits_are_explained_with_the_sysctl_to_raise(make_rig):
    rig = make_rig(sign_in=False)
    _, checks, _ = run_check(rig, offline=True, limits={"max_user_watches": 8192, "max_user_instances": 4,
                                                        "max_queued_events": 16384})
    assert checks["inotify"]["status"] == "warn"
    assert "sysctl fs.inotify.max_user_instances=512" in checks["inotify"]["message"]
    _, checks, _ = run_check(rig, offline=True, limits={"max_user_watches": None, "max_user_instances": None,
                                                        "max_queued_events": None})
    assert checks["inotify"]["status"] == "warn"


def test_tiktok_unreachable_or_capped_is_a_warning_not_a_crash(make_rig):
    rig = make_rig(accounts={"dan": {"mode": "direct", "defaults": {"privacy_level": "SELF_ONLY"}}})
    rig.emulator.faults.fail_next("creator_info", error_code="spam_risk_too_many_posts")
    code, checks, _ = run_check(rig)
    assert checks["tiktok:dan"]["status"] == "warn" and "cannot post right now" in checks["tiktok:dan"]["message"]
    assert code == 0
    away = make_rig(overrides={"tiktok.api_base_url": f"http://127.0.0.1:{_free_port()}"}, sign_in=False)
    save_tokens(away, "alice", scopes=("user.info.basic", "video.upload"), refresh_in=300 * 86400)
    code, checks, _ = run_check(away)
    assert checks["tiktok:alice"]["status"] == "warn" and "network_error" in checks["tiktok:alice"]["message"]
    assert checks["clock"]["status"] == "warn" and code == 0


def test_a_clock_far_from_tiktoks_is_reported(make_rig):
    rig = make_rig(sign_in=False)
    _, checks, _ = run_check(rig, now=time.time() + 3600)
    assert checks["clock"]["status"] == "warn"
    assert re.search(r"clock is \+360[01] s off", checks["clock"]["message"])  # the Date header has whole seconds
    _, checks, _ = run_check(rig, now=time.mktime((2001, 1, 1, 0, 0, 0, 0, 0, -1)))
    assert checks["clock"]["status"] == "fail"


def test_a_missing_root_a_damaged_database_and_loose_token_permissions(make_rig):
    rig = make_rig()
    (rig.state_dir / "watchfolder.sqlite3").write_bytes(b"this is not SQLite" * 100)
    os.chmod(rig.state_dir / "tokens", 0o755)  # noqa: S103 - the loose mode is what check must catch
    shutil.rmtree(rig.root)
    code, checks, _ = run_check(rig, offline=True)
    assert code == 1
    assert checks["root"]["status"] == "fail" and "mounted" in checks["root"]["message"]
    assert checks["database"]["status"] == "fail"
    assert checks["tokens_dir"]["status"] == "fail" and "chmod 700" in checks["tokens_dir"]["message"]


def test_account_folders_on_two_filesystems_are_named_with_their_mounts(make_rig):
    rig = make_rig(sign_in=False)
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(rig.root).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    elsewhere = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        (rig.root / "alice" / "inbox").mkdir(parents=True)
        (rig.root / "alice" / "done").symlink_to(elsewhere)
        _, checks, _ = run_check(rig, offline=True)
        assert checks["folders:alice"]["status"] == "warn"
        message = checks["folders:alice"]["message"]
        assert "different filesystems" in message and "done on /dev/shm" in message and "a copy" in message
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_a_bad_config_exits_2_with_a_failed_config_check(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("root: /nowhere\nwatch:\n  settle_seconds: soon\n")
    out = io.StringIO()
    code = check.main(argparse.Namespace(config=str(bad), json=True, offline=True), env={}, out=out)
    report = json.loads(out.getvalue())
    assert code == 2 and report["ok"] is False
    assert report["checks"][0]["name"] == "config" and report["checks"][0]["status"] == "fail"
    assert "settle_seconds" in report["checks"][0]["message"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run check as another user")
def test_folders_the_daemons_user_cannot_write_are_named_with_the_fix(emulator):
    # pytest's tmp_path is private to root, so this test lays out a world-traversable folder of its own.
    base = Path(tempfile.mkdtemp(prefix="wfcheck"))
    try:
        os.chmod(base, 0o755)  # noqa: S103 - the other user must reach the config inside
        # The checkout may be out of that user's reach (a clone in a mode-700 folder): run a copy.
        python, python_env = privdrop.portable_python(base / "program", 65534, 65534)
        rig = Rig(base, emulator, sign_in=False)
        rig.config_path.chmod(0o644)
        (rig.root / "alice" / "inbox").mkdir(parents=True)
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *python, "-m", "watchfolder",
             "check", "--json", "--offline", "-c", str(rig.config_path)],
            capture_output=True, text=True, timeout=60, check=False, cwd=base,
            env={**os.environ, **rig.env, **python_env})
        checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
        assert result.returncode == 1, result.stderr
        assert checks["root"]["status"] == "fail" and "setfacl" in checks["root"]["message"]
        assert checks["state_dir"]["status"] == "fail"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_render_wraps_each_message_under_its_name() -> None:
    text = check.render([doctor.Check("a", doctor.OK, "fine"), doctor.Check("longer", doctor.FAIL, "word " * 40)])
    lines = text.splitlines()
    assert lines[0] == "ok    a       fine"
    assert lines[1].startswith("FAIL  longer  word") and lines[2].startswith(" " * 14 + "word")
    assert lines[-1] == "1 problem(s) to fix, 0 warning(s)."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
