"""``watchfolder check FILE… [--account NAME] [--json]``: the verdict for files not yet dropped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import media_headers
from watchfolder import cli
from watchfolder.intake import videocheck
from watchfolder.media import samples
from watchfolder.store.store import Store

FIXTURES = media_headers.FIXTURES


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(f"root: {tmp_path / 'root'}\nstate_dir: {tmp_path / 'state'}\ntiktok: {{client_key: k}}\n"
                    "accounts:\n  alice: {}\n  bob: {mode: direct, video_source: file_upload}\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def test_every_file_gets_its_verdict_and_the_exit_code_says_if_all_pass(config: Path, capsys) -> None:
    good, bad = str(FIXTURES / "h264_aac.mp4"), str(FIXTURES / "fps120_4k.mp4")

    code, out = run(capsys, "check", "-c", str(config), good)
    assert code == 0
    assert f"ok    {good}: accepted for alice (h264 1080x1920 30 fps 12.0 s aac)" in out
    assert "uploaded (FILE_UPLOAD) in 1 chunk of 950 bytes" in out

    code, out = run(capsys, "-c", str(config), "check", good, bad)
    assert code == 1
    assert f"FAIL  {bad}: frame_rate_check_failed: 4K at 120 fps: TikTok takes 23–60 fps" in out
    assert "1 of 2 would be accepted for alice." in out


def test_json_names_code_media_warnings_and_what_would_be_sent(config: Path, capsys, tmp_path: Path) -> None:
    webm = str(FIXTURES / "vp9_opus.webm")
    note = tmp_path / "notes.pdf"
    note.write_bytes(b"%PDF-1.4\n")

    code, out = run(capsys, "check", "-c", str(config), "--json", webm, str(note), str(tmp_path / "gone.mp4"))
    report = json.loads(out)

    assert code == 1 and report["ok"] is False and report["account"] == "alice"
    first, second, third = report["files"]
    assert first["accepted"] and first["media"]["codec"] == "vp9" and "OPUS" in first["warnings"][0]
    assert first["sent_as"].startswith("a video as drafts in the creator's TikTok inbox")
    assert (second["accepted"], second["code"]) == (False, "unsupported_media")
    assert third["code"] == "not_found"


def test_the_account_decides_settings_and_mode(config: Path, capsys, tmp_path: Path) -> None:
    """For bob (direct) a video without a privacy_level would fail on its settings; with clip.yaml it passes."""
    clip = samples.write_mp4(tmp_path / "clip.mp4", duration_seconds=5)

    code, out = run(capsys, "check", "-c", str(config), "--account", "bob", str(clip))
    assert code == 1 and "bad_post_settings" in out and "privacy_level" in out

    (tmp_path / "clip.yaml").write_text("privacy_level: SELF_ONLY\n", encoding="utf-8")
    code, out = run(capsys, "check", "-c", str(config), "--account", "bob", str(clip))
    assert code == 0 and "accepted for bob" in out and "a direct post" in out

    assert cli.main(["check", "-c", str(config), "--account", "carol", str(clip)]) == 2
    assert "unknown account 'carol'" in capsys.readouterr().err


def test_the_creators_cached_limit_counts_with_its_age(config: Path, capsys, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    store = Store(tmp_path / "state")
    videocheck.remember_creator(store, "alice", nickname="Alice", max_seconds=180, now=1_000_000.0)
    store.close()
    five = tmp_path / "five.mp4"
    shutil.copyfile(FIXTURES / "five_minutes.mp4", five)

    from watchfolder.commands import checkfiles
    from watchfolder.config import settings as config_module

    settings = config_module.load(config, env={})
    assert checkfiles.main(settings, [str(five)], now=1_000_000.0 + 2 * 86400) == 1
    out = capsys.readouterr().out
    assert "duration_check_failed: 5 min long: Alice may post at most 3 min" in out and "2 days ago" in out
