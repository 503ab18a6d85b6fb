"""`auth import` takes tokens from stdin or a file, so they never sit in /proc/PID/cmdline.

`--access-token`/`--refresh-token` still work (the documented form), with a warning, and `check` notes
tokens that came that way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import SCOPES, Rig, wait_for
from watchfolder.commands import tokeninput
from watchfolder.core.errors import UsageError
from watchfolder.media import samples
from watchfolder.tiktok.tokens import TokenStore

SCRIPT = Path(sys.executable).parent / "watchfolder"


def env_of(rig: Rig) -> dict[str, str]:
    return {**os.environ, **rig.env}


def tiktok_json(user: object) -> str:
    """What TikTok's /v2/oauth/token/ answers, as a user would save it."""
    return json.dumps({"access_token": user.access_token, "expires_in": 86400,  # type: ignore[attr-defined]
                       "open_id": user.open_id, "refresh_expires_in": 31536000,  # type: ignore[attr-defined]
                       "refresh_token": user.refresh_token, "scope": ",".join(SCOPES),  # type: ignore[attr-defined]
                       "token_type": "Bearer"})


def test_tokens_piped_in_are_not_on_the_command_line_and_the_daemon_posts_with_them(make_rig, tmp_path):
    rig = make_rig(sign_in=False)
    user = rig.emulator.add_user("alice", scopes=SCOPES)
    process = subprocess.Popen([str(SCRIPT), "auth", "import", "alice", "-c", str(rig.config_path)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env_of(rig))
    try:
        # The process waits for its input: what any local user can read of it now holds no token.
        proc = Path(f"/proc/{process.pid}/cmdline")
        cmdline = wait_for(lambda: b"auth\x00import\x00alice" in proc.read_bytes() and proc.read_bytes(), 15,
                           what="the import process started")
        assert user.access_token.encode() not in cmdline and user.refresh_token.encode() not in cmdline
        out, err = process.communicate(tiktok_json(user), timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "tokens stored for alice" in out and "WARNING" not in err
    assert user.access_token not in out + err and user.refresh_token not in out + err
    stored = TokenStore(rig.state_dir).load("alice")
    assert stored is not None and (stored.refresh_token, stored.open_id, stored.scopes) == (
        user.refresh_token, user.open_id, SCOPES)

    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=150_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    assert rig.wait_sidecar("alice", "clip.mp4")["result"] == "done"


def test_key_value_lines_from_a_file(make_rig, tmp_path):
    rig = make_rig(sign_in=False)
    user = rig.emulator.add_user("alice", scopes=SCOPES)
    source = tmp_path / "tokens.txt"
    source.write_text(f"# from the portal\naccess_token={user.access_token}\nrefresh_token = {user.refresh_token}\n"
                      f"open_id={user.open_id}\nscope=video.upload user.info.basic\nexpires_in=3600\n")

    result = subprocess.run([str(SCRIPT), "auth", "import", "alice", "--file", str(source), "-c",
                             str(rig.config_path)], capture_output=True, text=True, timeout=60, check=False,
                            env=env_of(rig))

    assert result.returncode == 0, result.stderr
    stored = TokenStore(rig.state_dir).load("alice")
    assert stored is not None and stored.scopes == ("video.upload", "user.info.basic")
    assert stored.access_expires_at - stored.updated_at == pytest.approx(3600)


def test_the_old_flags_still_work_with_a_warning_and_check_notes_it(make_rig):
    rig = make_rig(sign_in=False)
    user = rig.emulator.add_user("alice", scopes=SCOPES)

    result = subprocess.run([str(SCRIPT), "auth", "import", "alice", "--access-token", user.access_token,
                             "--refresh-token", user.refresh_token, "--open-id", user.open_id, "--scope",
                             ",".join(SCOPES), "-c", str(rig.config_path)], capture_output=True, text=True,
                            timeout=60, check=False, env=env_of(rig))
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "visible to every local user" in result.stderr
    assert user.access_token not in result.stderr

    checked = subprocess.run([str(SCRIPT), "check", "--json", "--offline", "-c", str(rig.config_path)],
                             capture_output=True, text=True, timeout=60, check=False, env=env_of(rig))
    verdicts = {c["name"]: c for c in json.loads(checked.stdout)["checks"]}
    assert verdicts["tokens:alice"]["status"] == "warn"
    assert "imported with --access-token/--refresh-token" in verdicts["tokens:alice"]["message"]
    assert user.access_token not in checked.stdout


@pytest.mark.parametrize(("text", "problem"), [
    ("", "no tokens in the input"),
    ("refresh_token=rft.1\n", "no access_token"),
    ('{"access_token": "act.1"}', "no refresh_token"),
    ("access_token act.1\n", "line 1 is not key=value"),
    ("access_token=act.1\nrefresh_token=rft.1\nexpires_in=soon\n", "expires_in must be a number of seconds"),
    ('["act.1", "rft.1"]', "not TikTok's token JSON"),
])
def test_bad_input_is_a_usage_error_that_never_quotes_a_token(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        tokeninput.parse(text)
    assert problem in str(caught.value)
    assert "act.1" not in str(caught.value) and "rft.1" not in str(caught.value)


def test_tiktoks_wrapped_answer_is_understood() -> None:
    parsed = tokeninput.parse(json.dumps({"data": {"access_token": "act.1", "refresh_token": "rft.1",
                                                   "open_id": "-x", "scope": "video.upload"}}))
    assert (parsed.access_token, parsed.refresh_token, parsed.open_id, parsed.scopes) == (
        "act.1", "rft.1", "-x", ("video.upload",))
