"""Direct Post (accounts with ``mode: direct``): creator_info before each post, refusals before the init,
post_info exactly as the settings say, and a creator who cannot post now waits instead of failing."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from tests.test_photos import hosted_rig, inits, sha256
from watchfolder.intake import videocheck
from watchfolder.media import samples
from watchfolder.ops import report
from watchfolder.store.store import Store

DIRECT = {"bob": {"mode": "direct"}}
Make = Callable[..., Rig]


def endpoints(rig: Rig) -> list[str]:
    return [r.endpoint for r in rig.emulator.records.requests]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Build a started direct-mode rig for bob, signed in as a creator with the options given
    (``private_account``, ``max_video_post_duration_sec``, …); ``emulator`` holds emulator settings."""
    with contextlib.ExitStack() as stack:
        numbers = itertools.count()

        def build(*, overrides: dict[str, Any] | None = None, emulator: dict[str, Any] | None = None,
                  **creator: Any) -> Rig:
            rig = stack.enter_context(hosted_rig(tmp_path / f"rig{next(numbers)}", accounts=DIRECT,
                                                 overrides=overrides, sign_in=False, **(emulator or {})))
            rig.sign_in("bob", **creator)
            rig.start()
            return rig

        yield build


def test_a_direct_video_with_its_yaml_is_posted_with_exactly_those_settings(make: Make, tmp_path: Path) -> None:
    """clip.mp4 + clip.yaml over the account's defaults: creator_info is asked first, the video init
    carries post_info exactly as set (the file winning over the defaults), TikTok reports
    PUBLISH_COMPLETE, and clip.mp4, clip.yaml and the sidecar are in done/."""
    defaults = {"privacy_level": "SELF_ONLY", "title": "from the defaults", "disable_duet": True}
    rig = make(overrides={"accounts.bob.defaults": defaults})
    samples.write_mp4(tmp_path / "clip.mp4", size=300_000, duration_seconds=12)
    digest = sha256(tmp_path / "clip.mp4")
    (tmp_path / "clip.yaml").write_text(
        'title: "Launch day 🚀 #news"\nprivacy_level: MUTUAL_FOLLOW_FRIENDS\ndisable_comment: true\n'
        "disable_stitch: true\nvideo_cover_timestamp_ms: 1500\nbrand_organic_toggle: true\nis_aigc: true\n",
        encoding="utf-8")
    rig.drop("bob", "clip.yaml", tmp_path / "clip.yaml")
    rig.drop("bob", "clip.mp4", tmp_path / "clip.mp4")

    sidecar = rig.wait_sidecar("bob", "clip.mp4")

    calls = endpoints(rig)
    assert calls.index("creator_info") < calls.index("video_init")
    (publish,) = rig.emulator.records.publishes
    assert (publish.mode, publish.source, publish.sha256) == ("direct", "FILE_UPLOAD", digest)
    assert publish.post_info == {
        "title": "Launch day 🚀 #news", "privacy_level": "MUTUAL_FOLLOW_FRIENDS", "disable_comment": True,
        "disable_duet": True, "disable_stitch": True, "video_cover_timestamp_ms": 1500,
        "brand_content_toggle": False, "brand_organic_toggle": True, "is_aigc": True,
    }
    assert sidecar["result"] == "done" and sidecar["status"] == "PUBLISH_COMPLETE" and sidecar["mode"] == "direct"
    assert sidecar["settings_file"] == "clip.yaml"
    assert sorted(os.listdir(rig.folder("bob", "done"))) == ["clip.mp4", "clip.mp4.json", "clip.yaml"]


def test_a_privacy_level_the_creator_cannot_use_fails_before_the_init(make: Make, tmp_path: Path) -> None:
    """A private creator offered FOLLOWER_OF_CREATOR/MUTUAL_FOLLOW_FRIENDS/SELF_ONLY and a file asking
    PUBLIC_TO_EVERYONE: failed/ naming the options, after creator_info and with no init."""
    rig = make(private_account=True)
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    (tmp_path / "clip.yaml").write_text("privacy_level: PUBLIC_TO_EVERYONE\n")
    rig.drop("bob", "clip.yaml", tmp_path / "clip.yaml")
    rig.drop("bob", "clip.mp4", tmp_path / "clip.mp4")

    sidecar = rig.wait_sidecar("bob", "clip.mp4", "failed")

    assert sidecar["error"]["code"] == "privacy_level_option_mismatch"
    assert "PUBLIC_TO_EVERYONE" in sidecar["error"]["message"] and "SELF_ONLY" in sidecar["error"]["message"]
    assert "creator_info" in endpoints(rig) and inits(rig) == []
    assert sorted(os.listdir(rig.folder("bob", "failed"))) == ["clip.mp4", "clip.mp4.json", "clip.yaml"]


@pytest.mark.parametrize("name", ["long.mp4", "long.webm"])
def test_a_video_longer_than_the_creator_may_post_fails_before_the_init(make: Make, tmp_path: Path,
                                                                        name: str) -> None:
    """max_video_post_duration_sec 10 and a 25 s video (duration from its MP4 or WebM header): failed/
    saying both lengths, after creator_info and with no init."""
    rig = make(max_video_post_duration_sec=10, overrides={"accounts.bob.defaults": {"privacy_level": "SELF_ONLY"}})
    if name.endswith(".mp4"):
        samples.write_mp4(tmp_path / name, size=200_000, duration_seconds=25)
    else:
        samples.write_webm(tmp_path / name, size=200_000, duration_seconds=25)
    rig.drop("bob", name, tmp_path / name)

    sidecar = rig.wait_sidecar("bob", name, "failed")

    assert sidecar["error"]["code"] == "duration_check_failed"
    assert "25 s" in sidecar["error"]["message"] and "10 s" in sidecar["error"]["message"]
    assert inits(rig) == []


def test_no_privacy_level_anywhere_fails_before_any_call(make: Make, tmp_path: Path) -> None:
    """Direct posts need privacy_level (file or defaults); without one the item fails with no API call."""
    rig = make()
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("bob", "clip.mp4", tmp_path / "clip.mp4")

    sidecar = rig.wait_sidecar("bob", "clip.mp4", "failed")

    assert sidecar["error"]["code"] == "bad_post_settings" and "privacy_level" in sidecar["error"]["message"]
    assert rig.emulator.records.requests == []


def test_a_creator_at_the_daily_cap_waits_in_the_inbox_and_posts_a_day_later(make: Make, tmp_path: Path) -> None:
    """TikTok's creator_info says the creator cannot post now (daily cap, HTTP 200): the second video
    waits in inbox/ instead of failing, `status` says why, and it goes once the day has passed."""
    rig = make(overrides={"accounts.bob.defaults": {"privacy_level": "SELF_ONLY"}},
               emulator={"direct_post_daily_cap": 1})
    samples.write_mp4(tmp_path / "one.mp4", size=150_000, duration_seconds=2)
    samples.write_mp4(tmp_path / "two.mp4", size=160_000, duration_seconds=3)
    rig.drop("bob", "one.mp4", tmp_path / "one.mp4")
    rig.wait_sidecar("bob", "one.mp4")
    rig.drop("bob", "two.mp4", tmp_path / "two.mp4")

    def held() -> list[dict[str, Any]]:
        rows = report.collect(rig.settings, rig.emulator.clock.now())["items"]
        return [row for row in rows if row["name"] == "two.mp4" and row["wait_reason"] == "daily_posts"]

    # The ledger knows the cap is reached: the second post waits without a call that TikTok would refuse.
    waiting = wait_for(held, 10, what="two.mp4 waiting for the cap")
    assert waiting[0]["folder"] == "inbox" and (rig.folder("bob", "inbox") / "two.mp4").exists()
    assert waiting[0]["state"] in ("queued", "waiting") and waiting[0]["next_attempt_at"]
    assert not (rig.folder("bob", "failed") / "two.mp4.json").exists()
    assert len(inits(rig)) == 1

    rig.emulator.clock.advance(86400 + 60)

    sidecar = rig.wait_sidecar("bob", "two.mp4")
    assert sidecar["status"] == "PUBLISH_COMPLETE"
    assert len(inits(rig)) == 2


def test_a_direct_photo_post_sends_direct_post_with_its_post_info(make: Make, tmp_path: Path) -> None:
    """A photo folder in a direct account: content/init with DIRECT_POST, privacy and the photo-only
    settings in post_info, PUBLISH_COMPLETE."""
    rig = make()
    folder = tmp_path / "album"
    folder.mkdir()
    samples.write_jpeg(folder / "a.jpg", seed=1)
    samples.write_jpeg(folder / "b.jpg", seed=2)
    (folder / "post.yaml").write_text('title: "Album"\ndescription: "two"\nprivacy_level: SELF_ONLY\n'
                                      "auto_add_music: true\ndisable_comment: true\n")
    rig.drop("bob", "album", folder)

    sidecar = rig.wait_sidecar("bob", "album")

    assert "creator_info" in endpoints(rig)
    (publish,) = rig.emulator.records.publishes
    assert (publish.kind, publish.mode) == ("photo", "direct")
    assert publish.post_info == {"title": "Album", "description": "two", "privacy_level": "SELF_ONLY",
                                 "disable_comment": True, "auto_add_music": True, "brand_content_toggle": False,
                                 "brand_organic_toggle": False}
    assert sidecar["status"] == "PUBLISH_COMPLETE"


# ---- what creator_info says about interactions and length ----------------------------------------

SELF_ONLY = {"accounts.bob.defaults": {"privacy_level": "SELF_ONLY"}}


def test_interactions_the_creator_disabled_are_sent_disabled_and_the_sidecar_says_so(make: Make,
                                                                                     tmp_path: Path) -> None:
    rig = make(overrides=SELF_ONLY)
    rig.users["bob"].comment_disabled = True
    rig.users["bob"].stitch_disabled = True
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000, duration_seconds=12)
    (tmp_path / "clip.yaml").write_text("disable_comment: false\ndisable_duet: false\n", encoding="utf-8")
    rig.drop("bob", "clip.yaml", tmp_path / "clip.yaml")
    rig.drop("bob", "clip.mp4", tmp_path / "clip.mp4")

    sidecar = rig.wait_sidecar("bob", "clip.mp4")

    (publish,) = rig.emulator.records.publishes
    assert (publish.post_info["disable_comment"], publish.post_info["disable_duet"],
            publish.post_info["disable_stitch"]) == (True, False, True)
    assert (sidecar["post_settings"]["disable_comment"], sidecar["post_settings"]["disable_stitch"]) == (True, True)
    (warning,) = [w for w in sidecar["warnings"] if "turned off" in w]
    assert "has turned off comments, stitches on TikTok" in warning
    assert any(e["state"] == "creator_settings" for e in sidecar["history"])


def test_what_creator_info_said_is_cached_for_the_account(make: Make, tmp_path: Path) -> None:
    """After one direct post, the creator's 300 s limit is known locally (and refuses at intake next time)."""
    rig = make(overrides=SELF_ONLY, max_video_post_duration_sec=300)
    samples.write_mp4(tmp_path / "a.mp4", size=200_000, duration_seconds=12)
    rig.drop("bob", "a.mp4", tmp_path / "a.mp4")
    rig.wait_sidecar("bob", "a.mp4")
    store = Store(rig.state_dir, readonly=True)
    try:
        limit = videocheck.creator_limit(store, "bob", rig.emulator.clock.now())
    finally:
        store.close()
    assert limit is not None and limit.seconds == 300 and limit.age_seconds < 60

    samples.write_mp4(tmp_path / "b.mp4", size=200_000, duration_seconds=400)
    rig.drop("bob", "b.mp4", tmp_path / "b.mp4")
    sidecar = rig.wait_sidecar("bob", "b.mp4", "failed")
    assert sidecar["error"]["code"] == "duration_check_failed"
    assert len(inits(rig)) == 1  # only a.mp4's
