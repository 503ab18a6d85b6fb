"""Post settings files through the running daemon: checked before any API call, carried to done/ and
failed/ with their media, read even when they land a moment after it, publish_at, inbox captions."""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from tests.test_photos import inits
from watchfolder import logs
from watchfolder.commands import check
from watchfolder.media import samples
from watchfolder.ops import report


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    made = make_rig()
    made.start()
    return made


def _video(tmp_path: Path, name: str = "clip.mp4", seed_seconds: float = 2) -> Path:
    return samples.write_mp4(tmp_path / name, size=150_000, duration_seconds=seed_seconds)


BAD_SETTINGS = {   # case name: (settings file text, words the sidecar's message must hold)
    "unknown-key": ("titel: hello\n", ["unknown-key.yaml", "'titel'", "unknown key", "did you mean 'title'"]),
    "bad-enum": ("privacy_level: EVERYONE\n", ["'privacy_level'", "must be one of", "EVERYONE"]),
    "not-a-boolean": ("disable_comment: maybe\n", ["'disable_comment'", "true or false"]),
    "title-too-long": ("title: " + "界" * 2201 + "\n", ["'title'", "2201 UTF-16 units", "2200"]),
    "broken-yaml": ("title: [unclosed\n", ["broken-yaml.yaml", "not valid YAML"]),
    "photo-only-key": ("description: only for photos\n", ["'description'", "photo posts only"]),
}


def test_a_bad_settings_file_sends_its_media_to_failed_saying_which_key_and_why(rig: Rig, tmp_path: Path) -> None:
    """Each bad settings file (unknown key, bad enum, not a boolean, too long in UTF-16 units, broken
    YAML, a photo-only key on a video): the video and its settings file land in failed/, the sidecar
    names the key and the reason, and nothing was sent to TikTok."""
    for number, (case, (text, _)) in enumerate(BAD_SETTINGS.items()):
        (tmp_path / f"{case}.yaml").write_text(text, encoding="utf-8")
        rig.drop("alice", f"{case}.yaml", tmp_path / f"{case}.yaml")
        rig.drop("alice", f"{case}.mp4", _video(tmp_path, f"{case}.mp4", 2 + number))

    for case, (_, words) in BAD_SETTINGS.items():
        sidecar = rig.wait_sidecar("alice", f"{case}.mp4", "failed")
        assert sidecar["error"]["code"] == "bad_post_settings", case
        for word in words:
            assert word in sidecar["error"]["message"], case
        assert (rig.folder("alice", "failed") / f"{case}.yaml").exists(), case
    assert rig.emulator.records.requests == []


def test_a_photo_title_is_counted_in_utf16_units(make_rig: Callable[..., Rig], tmp_path: Path) -> None:
    """45 emoji are 90 UTF-16 units (TikTok's photo title limit) and pass; 46 fail before any call."""
    made = make_rig()
    made.start()
    inbox = made.folder("alice", "inbox")
    samples.write_jpeg(tmp_path / "ok.jpg", seed=1)
    samples.write_jpeg(tmp_path / "long.jpg", seed=2)
    (tmp_path / "long.yaml").write_text("title: " + "🙂" * 46 + "\n", encoding="utf-8")
    made.drop("alice", "long.yaml", tmp_path / "long.yaml")
    made.drop("alice", "long.jpg", tmp_path / "long.jpg")

    sidecar = made.wait_sidecar("alice", "long.jpg", "failed")

    assert "92 UTF-16 units, TikTok allows 90" in sidecar["error"]["message"]
    assert not (inbox / "long.yaml").exists()


def test_the_settings_file_travels_with_its_media_to_done(rig: Rig, tmp_path: Path) -> None:
    """clip.mp4 with clip.yml: both end in done/, and the sidecar names the file and keeps its settings."""
    (tmp_path / "clip.yml").write_text("title: hello\nis_aigc: true\n")
    rig.drop("alice", "clip.yml", tmp_path / "clip.yml")
    rig.drop("alice", "clip.mp4", _video(tmp_path))

    sidecar = rig.wait_sidecar("alice", "clip.mp4")

    assert sidecar["settings_file"] == "clip.yml"
    assert sidecar["post_settings"]["is_aigc"] is True
    assert sorted(os.listdir(rig.folder("alice", "done"))) == ["clip.mp4", "clip.mp4.json", "clip.yml"]
    assert os.listdir(rig.folder("alice", "inbox")) == []


def test_a_settings_file_landing_just_after_its_media_is_used(rig: Rig, tmp_path: Path) -> None:
    """The yaml arrives after the video, inside its settle window, and is written in pieces 0.2 s apart
    (each shorter than settle_seconds, none but the whole valid YAML) for about a second, so the video
    settles while the yaml is half written: the video waits for its yaml to settle too, and uses it."""
    inbox = rig.folder("alice", "inbox")
    rig.drop("alice", "late.mp4", _video(tmp_path, "late.mp4"))
    time.sleep(0.15)                       # settle_seconds is 0.3 in the rig
    with open(inbox / "late.yaml", "w", encoding="utf-8") as handle:
        for piece in ('title: "written', " in", " five", " pieces", '"\n'):
            handle.write(piece)
            handle.flush()
            time.sleep(0.2)

    sidecar = rig.wait_sidecar("alice", "late.mp4")

    assert sidecar["post_settings"]["title"] == "written in five pieces"
    assert sidecar["settings_file"] == "late.yaml"
    assert (rig.folder("alice", "done") / "late.yaml").exists()


def test_an_inbox_caption_is_noted_once_in_the_log_and_kept_in_the_sidecar(
        make_rig: Callable[..., Rig], tmp_path: Path) -> None:
    """TikTok drops captions of inbox drafts: two captioned videos give one warning, the inits carry
    no post_info, and each sidecar keeps its caption."""
    lines = io.StringIO()
    logs.configure("warning", json=True, stream=lines)
    rig = make_rig()
    rig.start()
    for index, name in enumerate(("a", "b")):
        (tmp_path / f"{name}.txt").write_text(f"caption {name}\n")
        rig.drop("alice", f"{name}.txt", tmp_path / f"{name}.txt")
        rig.drop("alice", f"{name}.mp4", _video(tmp_path, f"{name}.mp4", 2 + index))

    sidecars = [rig.wait_sidecar("alice", f"{name}.mp4") for name in ("a", "b")]

    assert [s["post_settings"]["title"] for s in sidecars] == ["caption a", "caption b"]
    assert [p.post_info for p in rig.emulator.records.publishes] == [{}, {}]
    events = [json.loads(line) for line in lines.getvalue().splitlines() if line.startswith("{")]
    warned = [e for e in events if e.get("event") == "inbox_caption_dropped"]
    assert len(warned) == 1 and warned[0]["account"] == "alice" and "mode: direct" in warned[0]["reason"]


def test_check_says_which_inbox_captions_tiktok_will_drop(make_rig: Callable[..., Rig]) -> None:
    """`watchfolder check` warns about an inbox account's captioned videos, naming the settings file,
    and says nothing of a direct account's captions or of a settings file without a title."""
    rig = make_rig(accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "direct"}})
    for account in ("alice", "bob"):
        inbox = rig.folder(account, "inbox")
        inbox.mkdir(parents=True)
        _video(inbox, "clip.mp4")
        (inbox / "clip.yaml").write_text("title: hello\nprivacy_level: SELF_ONLY\n")
    _video(rig.folder("alice", "inbox"), "plain.mp4")
    (rig.folder("alice", "inbox") / "plain.yaml").write_text("disable_comment: true\n")
    out = io.StringIO()

    check.main(argparse.Namespace(config=str(rig.config_path), json=True, offline=True), env=rig.env, out=out)

    checks = json.loads(out.getvalue())["checks"]
    captions = [c for c in checks if c["name"].startswith("captions:")]
    assert [(c["name"], c["status"]) for c in captions] == [("captions:alice", "warn")]
    assert captions[0]["message"].startswith("alice: clip.yaml set a caption")
    assert "drops the title" in captions[0]["message"]


def test_publish_at_holds_the_item_in_the_inbox_until_its_time(rig: Rig, tmp_path: Path) -> None:
    """publish_at an hour ahead: the video waits in inbox/ (status says it is scheduled) and nothing is
    sent; once the injected clock passes that time, it goes and lands in done/."""
    when = rig.emulator.clock.now() + 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    (tmp_path / "later.yaml").write_text(f'publish_at: "{stamp}"\n')
    rig.drop("alice", "later.yaml", tmp_path / "later.yaml")
    rig.drop("alice", "later.mp4", _video(tmp_path, "later.mp4"))

    def scheduled() -> list[dict[str, Any]]:
        rows = report.collect(rig.settings, rig.emulator.clock.now())["items"]
        return [row for row in rows if row["name"] == "later.mp4" and row["wait_reason"] == "publish_at"]

    (row,) = wait_for(scheduled, 10, what="later.mp4 scheduled")
    assert row["state"] == "waiting" and row["summary"].startswith("scheduled for ")
    assert row["publish_at"] == stamp
    time.sleep(0.5)   # a few daemon loops: still nothing may be sent
    assert inits(rig) == [] and (rig.folder("alice", "inbox") / "later.mp4").exists()

    rig.emulator.clock.advance(3601)

    sidecar = rig.wait_sidecar("alice", "later.mp4")
    assert sidecar["result"] == "done" and len(inits(rig)) == 1


@pytest.fixture(autouse=True)
def _restore_logs() -> Iterator[None]:
    yield
    logs.configure("warning", json=True)
