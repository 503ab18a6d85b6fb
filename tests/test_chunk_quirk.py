"""TikTok's multi-chunk quirk (interface.md): a multi-chunk init refused for its chunk size is not final."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig
from tests.test_photos import hosted_rig, inits
from watchfolder.core.errors import TikTokError
from watchfolder.core.model import Action
from watchfolder.daemon import quirk
from watchfolder.emulator.clock import OffsetClock
from watchfolder.media import samples
from watchfolder.tiktok import chunks

SIZE = 100_000_000  # over 64 MB: TikTok requires several chunks, which the quirk refuses
# A configured chunk size below the default (the largest), so each plan the quirk tries differs.
SMALLER = {"upload.chunk_size": 10_000_000}


def refusal(message: str = "The chunk size is invalid") -> TikTokError:
    return TikTokError("invalid_params", message, action=Action.FAIL, http_status=400)


def test_only_a_chunk_size_refusal_of_a_multi_chunk_plan_is_the_quirk() -> None:
    assert quirk.is_quirk(refusal(), 10)
    assert not quirk.is_quirk(refusal(), 1)  # one chunk: a real problem with this plan
    assert not quirk.is_quirk(refusal("The request post info is empty or incorrect"), 10)
    assert not quirk.is_quirk(TikTokError("internal_error", "The chunk size is invalid", action=Action.RETRY), 10)


def test_the_steps_with_and_without_a_media_host() -> None:
    configured = 10_000_000
    first, fewest, most = (chunks.plan(SIZE, c) for c in (configured, chunks.MAX_CHUNK, chunks.MIN_CHUNK))
    assert (first.count, fewest.count, most.count) == (10, 2, 19)

    hosted = [quirk.next_step(n, SIZE, configured, has_host=True) for n in range(4)]
    assert hosted == [quirk.Step(first), quirk.Step(fewest), quirk.Step(None, pull=True), None]
    alone = [quirk.next_step(n, SIZE, configured, has_host=False) for n in range(4)]
    assert alone == [quirk.Step(first), quirk.Step(fewest), quirk.Step(most), None]


def history_of(sidecar: dict) -> list[str]:
    return [event.get("detail", "") for event in sidecar["history"] if event["state"] == quirk.EVENT]


def test_with_a_media_host_a_100_mb_video_ends_in_done_through_pull_from_url(tmp_path: Path) -> None:
    with hosted_rig(tmp_path, overrides=SMALLER, multi_chunk_quirk=True, init_per_minute=0) as rig:
        rig.start()
        samples.write_mp4(tmp_path / "big.mp4", size=SIZE, duration_seconds=30)
        rig.drop("alice", "big.mp4", tmp_path / "big.mp4")

        sidecar = rig.wait_sidecar("alice", "big.mp4", "done", timeout=120)

        steps = history_of(sidecar)
        assert len(steps) == 2
        assert steps[0].startswith("TikTok refused the upload as 10 chunks of 10,000,000 bytes: invalid_params "
                                   "\"The chunk size is invalid\"") and steps[0].endswith("next: 2 chunks of "
                                                                                          "50,000,000 bytes")
        assert steps[1].endswith("next: PULL_FROM_URL through media_host")
        sent = inits(rig)
        assert [(r.endpoint, r.http_status) for r in sent] == [("inbox_init", 400)] * 2 + [("inbox_init", 200)]
        assert sidecar["status"] == "SEND_TO_USER_INBOX" and sidecar["attempts"] == 3


def test_without_a_media_host_it_fails_after_three_inits_saying_why_and_the_way_out(tmp_path: Path) -> None:
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          multi_chunk_quirk=True, init_per_minute=0) as emulator:
        rig = Rig(tmp_path / "rig", emulator, overrides=SMALLER)
        rig.start()
        try:
            samples.write_mp4(tmp_path / "big.mp4", size=SIZE, duration_seconds=30)
            rig.drop("alice", "big.mp4", tmp_path / "big.mp4")

            sidecar = rig.wait_sidecar("alice", "big.mp4", "failed", timeout=60)
        finally:
            rig.stop()

    assert sidecar["error"]["code"] == "invalid_params"
    message = sidecar["error"]["message"]
    assert "10 chunks of 10,000,000 bytes; 2 chunks of 50,000,000 bytes; 19 chunks of 5,242,880 bytes" in message
    assert "The chunk size is invalid" in message and "video_source: pull_from_url" in message
    assert "media_host" in message
    assert len(history_of(sidecar)) == 3 and history_of(sidecar)[-1].endswith("nothing left to try")
    assert [r.http_status for r in emulator.records.requests if r.endpoint == "inbox_init"] == [400, 400, 400]
    assert (rig.folder("alice", "failed") / "big.mp4").stat().st_size == SIZE


@pytest.mark.parametrize("size", [4_000_000, 60_000_000])
def test_a_video_that_fits_one_chunk_goes_in_one_at_the_latest_on_the_second_init(tmp_path: Path,
                                                                                   size: int) -> None:
    """Under 5 MB the plan is one chunk already; 60 MB with a configured 10 MB chunk goes as 6 chunks, is
    refused, and the next plan (64,000,000-byte chunks) is a single chunk, which the quirk leaves alone."""
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          multi_chunk_quirk=True, init_per_minute=0) as emulator:
        rig = Rig(tmp_path / "rig", emulator, overrides=SMALLER)
        rig.start()
        try:
            samples.write_mp4(tmp_path / "clip.mp4", size=size)
            rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
            sidecar = rig.wait_sidecar("alice", "clip.mp4", "done", timeout=60)
        finally:
            rig.stop()
    if size < chunks.MIN_CHUNK:
        assert history_of(sidecar) == [] and sidecar["attempts"] == 1
    else:
        assert [s.rsplit("; next: ", 1)[1] for s in history_of(sidecar)] == ["one chunk of 60,000,000 bytes"]
        assert sidecar["attempts"] == 2


def test_by_default_a_video_of_up_to_64_mb_goes_in_one_chunk_and_meets_no_quirk(tmp_path: Path) -> None:
    """The default plan sends the largest chunks, so 60 MB goes whole at the first init."""
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          multi_chunk_quirk=True, init_per_minute=0) as emulator:
        rig = Rig(tmp_path / "rig", emulator)
        rig.start()
        try:
            samples.write_mp4(tmp_path / "clip.mp4", size=60_000_000)
            rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
            sidecar = rig.wait_sidecar("alice", "clip.mp4", "done", timeout=60)
        finally:
            rig.stop()
    assert history_of(sidecar) == [] and sidecar["attempts"] == 1
    assert [r.http_status for r in emulator.records.requests if r.endpoint == "inbox_init"] == [200]
