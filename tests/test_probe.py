"""The media probe and TikTok's limits, judged locally: hand-made header fixtures, real ffmpeg output,
a bounded read of a 2 GB file, and the daemon refusing before any API call."""

from __future__ import annotations

import dataclasses
import io
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import media_headers
from tests.harness import Rig
from watchfolder.core.errors import ConfigError
from watchfolder.core.limits import VideoLimits
from watchfolder.media import probe as media
from watchfolder.media import samples
from watchfolder.media.info import READ_BUDGET, VideoInfo
from watchfolder.media.verdict import CreatorLimit, judge
from watchfolder.store.store import Store

FIXTURES = media_headers.FIXTURES
DEFAULT_LIMITS = VideoLimits()


def verdict_of(path: Path, limits: VideoLimits = DEFAULT_LIMITS, creator: CreatorLimit | None = None) -> str:
    refusal = judge(media.check_video(path), limits, creator).refusal
    return "accepted" if refusal is None else refusal.code


class CountingFile(io.RawIOBase):
    """A file object that counts the bytes read through it (what the probe costs)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self.f.close()
        super().close()


# ---- the hand-made fixtures ------------------------------------------------------------------------


def test_the_committed_fixtures_are_what_their_builder_makes() -> None:
    """tests/fixtures/media holds exactly the bytes tests/media_headers.py describes."""
    for name, (make, _) in media_headers.FIXTURE_SPECS.items():
        assert (FIXTURES / name).read_bytes() == make(), name


@pytest.mark.parametrize("name", sorted(media_headers.FIXTURE_SPECS))
def test_each_fixture_gets_its_documented_verdict(name: str) -> None:
    assert verdict_of(FIXTURES / name) == media_headers.FIXTURE_SPECS[name][1]


def test_what_the_probe_reads_from_the_fixtures() -> None:
    """Codec, pixel size as displayed, frame rate (the mean for a variable rate), length and audio."""
    read = {name: media.check_video(FIXTURES / name).as_dict() for name in media_headers.FIXTURE_SPECS}

    assert read["h264_aac.mp4"] == {"container": "mp4", "codec": "h264", "width": 1080, "height": 1920,
                                    "fps": 30.0, "duration_s": 12.0, "audio": "aac"}
    assert (read["h265.mp4"]["codec"], read["h265.mp4"]["fps"]) == ("h265", 60.0)
    assert read["vp9_opus.webm"] == {"container": "webm", "codec": "vp9", "width": 1080, "height": 1920,
                                     "fps": 30.0, "duration_s": 8.0, "audio": "opus"}
    # stored 1920x1080 with a 90 degree matrix: shown (and judged) as 1080x1920
    assert (read["rotated.mov"]["container"], read["rotated.mov"]["width"], read["rotated.mov"]["height"]) == \
        ("mov", 1080, 1920)
    # an empty moov and four moof fragments of 30 samples at 1/30 s each
    assert (read["fragmented.mp4"]["fps"], read["fragmented.mp4"]["duration_s"]) == (30.0, 4.0)
    assert media.check_video(FIXTURES / "fragmented.mp4").fragmented
    # 100 frames at 30 fps, 100 at 60, 100 at 24: 300 frames in 9.167 s
    assert read["vfr.mp4"]["fps"] == pytest.approx(300 / (10 / 3 + 5 / 3 + 25 / 6), abs=0.001)
    assert read["eleven_minutes.mp4"]["duration_s"] == 660.0
    assert read["av1.mp4"]["codec"] == "av1"


def test_refusals_say_the_measured_value_the_limit_and_a_fix() -> None:
    def message(name: str, creator: CreatorLimit | None = None) -> str:
        refusal = judge(media.check_video(FIXTURES / name), VideoLimits(), creator).refusal
        assert refusal is not None
        return refusal.message

    assert message("fps120_4k.mp4") == ("4K at 120 fps: TikTok takes 23–60 fps; re-encode, e.g. "
                                         "`ffmpeg -i in.mp4 -r 30 out.mp4`")
    assert message("height240.mp4").startswith("426x240 px: TikTok takes 360–4096 px for both width and height")
    assert message("eleven_minutes.mp4").startswith("11 min long: TikTok's API takes at most 10 min (600 s)")
    assert "-t 600" in message("eleven_minutes.mp4")
    assert message("av1.mp4").startswith("the video is AV1 in MP4: TikTok takes H.264, H.265, VP8, VP9")
    creator = message("five_minutes.mp4", CreatorLimit(180, 7200, "Bob"))
    assert creator.startswith("5 min long: Bob may post at most 3 min (180 s, max_video_post_duration_sec from "
                              "TikTok's creator_info 2 h ago)")


def test_a_video_longer_than_the_creator_may_post_is_refused_only_with_that_limit() -> None:
    five = FIXTURES / "five_minutes.mp4"
    assert verdict_of(five) == "accepted"
    assert verdict_of(five, creator=CreatorLimit(180, 60)) == "duration_check_failed"
    assert verdict_of(five, creator=CreatorLimit(600, 60)) == "accepted"


def test_every_limit_can_be_moved_in_the_config() -> None:
    """When TikTok changes a limit, the config follows without a release."""
    assert verdict_of(FIXTURES / "fps120_4k.mp4", VideoLimits(max_fps=120)) == "accepted"
    assert verdict_of(FIXTURES / "height240.mp4", VideoLimits(min_side=240)) == "accepted"
    assert verdict_of(FIXTURES / "eleven_minutes.mp4", VideoLimits(max_duration=900)) == "accepted"
    assert verdict_of(FIXTURES / "av1.mp4", VideoLimits(codecs=("h264", "av1"))) == "accepted"
    assert verdict_of(FIXTURES / "h265.mp4", VideoLimits(codecs=("h264",))) == "file_format_check_failed"


def test_unconfirmed_rules_and_unknown_details_only_warn(tmp_path: Path) -> None:
    """Opus audio and a 2 s clip pass with a warning each; headers without a frame rate pass, saying so."""
    warned = judge(media.check_video(FIXTURES / "vp9_opus.webm"), VideoLimits(warn_below_duration=10))

    assert warned.accepted
    assert any("OPUS" in w and "unconfirmed" in w for w in warned.warnings)
    assert any(w.startswith("8 s long: TikTok states no minimum length") for w in warned.warnings)
    bare = judge(media.check_video(samples.write_mp4(tmp_path / "bare.mp4", duration_seconds=5)), VideoLimits())
    assert bare.accepted
    assert bare.warnings == ("the headers do not give the frame rate: not checked here, TikTok will",)


def test_the_config_takes_video_limits_and_names_a_bad_one(tmp_path: Path) -> None:
    from watchfolder.config import settings as config

    base = "root: r\nstate_dir: s\ntiktok: {client_key: k}\naccounts: {a: {}}\n"
    good = tmp_path / "good.yaml"
    good.write_text(base + "video_limits: {max_fps: 120, max_duration: 15m, codecs: [h264, AV1]}\n")
    limits = config.load(good, env={}).video_limits
    assert (limits.max_fps, limits.max_duration, limits.codecs, limits.min_fps) == (120, 900, ("h264", "av1"), 23)
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "video_limits: {max_fps: fast, codecs: [h264, divx]}\n")
    with pytest.raises(ConfigError) as caught:
        config.load(bad, env={})
    text = str(caught.value)
    assert "bad.yaml" in text and "video_limits.max_fps" in text and "video_limits.codecs" in text


# ---- bounded reads ----------------------------------------------------------------------------------


def _sparse_mp4_moov_last(path: Path, size: int) -> Path:
    """ftyp, a 2 GB mdat that is one sparse hole, and the moov at the very end (a camera's layout)."""
    head = media_headers.ftyp()
    moov = media_headers.mp4(audio=media_headers.mp4a())[len(head):].split(b"mdat")[0][:-4]
    mdat_len = size - len(head) - len(moov)
    with open(path, "wb") as f:
        f.write(head + struct.pack(">I4s", mdat_len, b"mdat"))
        f.seek(len(head) + mdat_len)
        f.write(moov)
    return path


def test_a_2_gb_file_with_its_moov_at_the_end_costs_a_few_kilobytes(tmp_path: Path) -> None:
    path = _sparse_mp4_moov_last(tmp_path / "big.mp4", 2_000_000_000)
    counted = CountingFile(path)
    with counted:
        info = media.probe(counted)  # type: ignore[arg-type]

    assert (info.size, info.codec, info.fps, info.duration_seconds, info.audio) == \
        (2_000_000_000, "h264", 30.0, 12.0, "aac")
    assert counted.read_bytes < 16 * 1024


def test_the_read_budget_holds_for_a_hostile_file(tmp_path: Path) -> None:
    """9,000 empty top-level boxes after a real head: the structure is still walked within the budget."""
    path = tmp_path / "many.mp4"
    path.write_bytes(media_headers.mp4() + media_headers.box(b"free") * 9000)
    counted = CountingFile(path)
    with counted:
        info = media.probe(counted)  # type: ignore[arg-type]
    assert counted.read_bytes <= READ_BUDGET
    assert (info.codec, info.fps) == ("h264", 30.0)


def test_a_long_fragmented_file_is_read_only_as_far_as_the_budget_goes(tmp_path: Path) -> None:
    """3,000 fragments of 200 frames: the details stop at the budget; the mean rate of those read stands."""
    path = tmp_path / "long_fragments.mp4"
    path.write_bytes(media_headers.fragmented_mp4(fragments=3000, per_fragment=200))
    counted = CountingFile(path)
    with counted:
        info = media.probe(counted)  # type: ignore[arg-type]
    assert counted.read_bytes <= READ_BUDGET
    assert info.fps == 30.0 and info.fragmented


# ---- real media made by ffmpeg ----------------------------------------------------------------------

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (.ci/run installs it)")
SOURCE = ["-f", "lavfi", "-i", "testsrc2=size={size}:rate={rate}", "-f", "lavfi", "-i", "sine=f=440", "-t", "1"]
FAST_H264 = ["-c:v", "libx264", "-preset", "ultrafast"]
REAL = {  # name: (video size, frame rate, encoder options, what the probe reads, verdict)
    "h264.mp4": ("360x640", 30, [*FAST_H264, "-c:a", "aac"], ("h264", 360, 640, 30.0, "aac"), "accepted"),
    "h265.mp4": ("360x640", 30, ["-c:v", "libx265", "-preset", "ultrafast", "-c:a", "aac"],
                 ("h265", 360, 640, 30.0, "aac"), "accepted"),
    "vp9.webm": ("360x640", 30, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
                 ("vp9", 360, 640, 30.0, "opus"), "accepted"),
    "fragmented.mp4": ("640x360", 30, [*FAST_H264, "-c:a", "aac", "-movflags", "frag_keyframe+empty_moov"],
                       ("h264", 640, 360, None, "aac"), "accepted"),
    "fps120.mp4": ("640x360", 120, [*FAST_H264, "-an"], ("h264", 640, 360, 120.0, None), "frame_rate_check_failed"),
    "height240.mp4": ("426x240", 30, [*FAST_H264, "-an"], ("h264", 426, 240, 30.0, None),
                      "picture_size_check_failed"),
}


def ffmpeg(*args: str) -> None:
    assert FFMPEG is not None
    subprocess.run([FFMPEG, "-y", "-v", "error", *args], check=True, timeout=120, stdin=subprocess.DEVNULL)


@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_media_from_ffmpeg(tmp_path: Path, name: str) -> None:
    size, rate, options, expected, verdict = REAL[name]
    path = tmp_path / name
    ffmpeg(*[a.format(size=size, rate=rate) for a in SOURCE], *options, str(path))
    info = media.check_video(path)

    codec, width, height, fps, audio = expected
    assert (info.codec, info.width, info.height, info.audio) == (codec, width, height, audio)
    if fps is not None:
        assert info.fps == pytest.approx(fps, abs=0.01)
    else:  # fragments: the mean over what ffmpeg wrote (the last frame may be stretched to the audio)
        assert 28 <= (info.fps or 0) <= 31
    assert info.duration_seconds == pytest.approx(1.0, abs=0.1)
    assert verdict_of(path) == verdict


@needs_ffmpeg
def test_real_mov_with_rotation_is_judged_as_displayed(tmp_path: Path) -> None:
    flat = tmp_path / "flat.mp4"
    ffmpeg(*[a.format(size="640x360", rate=30) for a in SOURCE], *FAST_H264, "-an", str(flat))
    ffmpeg("-i", str(flat), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tmp_path / "rot.mov"))
    info = media.check_video(tmp_path / "rot.mov")
    assert (info.container, info.width, info.height) == ("mov", 360, 640)


# ---- the daemon: refused locally, no API call ----------------------------------------------------


def test_refused_videos_fail_before_any_api_call_with_tiktoks_code(make_rig: Callable[..., Rig],
                                                                     tmp_path: Path) -> None:
    rig = make_rig()
    rig.start()
    refused = {n: v for n, (_, v) in media_headers.FIXTURE_SPECS.items() if v != "accepted"}
    for name in refused:
        copy = tmp_path / name
        shutil.copyfile(FIXTURES / name, copy)
        rig.drop("alice", name, copy)

    sidecars = {name: rig.wait_sidecar("alice", name, "failed") for name in refused}

    for name, code in refused.items():
        assert sidecars[name]["error"]["code"] == code
        assert sidecars[name]["media"]["codec"] == media.check_video(FIXTURES / name).codec
        assert (rig.folder("alice", "failed") / name).exists()
    assert sidecars["fps120_4k.mp4"]["media"] == {"container": "mp4", "codec": "h264", "width": 3840,
                                                  "height": 2160, "fps": 120.0, "duration_s": 12.0, "audio": None}
    assert "4K at 120 fps" in sidecars["fps120_4k.mp4"]["error"]["message"]
    assert rig.emulator.records.requests == []


def test_an_accepted_video_carries_what_was_read_to_done_and_status(make_rig: Callable[..., Rig],
                                                                     tmp_path: Path) -> None:
    from watchfolder.ops import report

    rig = make_rig()
    rig.start()
    shutil.copyfile(FIXTURES / "vp9_opus.webm", tmp_path / "clip.webm")
    rig.drop("alice", "clip.webm", tmp_path / "clip.webm")

    sidecar = rig.wait_sidecar("alice", "clip.webm")

    assert sidecar["media"] == {"container": "webm", "codec": "vp9", "width": 1080, "height": 1920, "fps": 30.0,
                                "duration_s": 8.0, "audio": "opus"}
    assert any("OPUS" in w for w in sidecar["warnings"])
    data = report.collect(rig.settings, rig.emulator.clock.now())
    row = next(r for r in data["items"] if r["name"] == "clip.webm")
    assert row["media_text"] == "vp9 1080x1920 30 fps 8.0 s opus"
    from watchfolder.commands import status

    assert "[vp9 1080x1920 30 fps 8.0 s opus]" in status.render(data)


def test_the_creators_cached_limit_refuses_at_intake_saying_its_age(make_rig: Callable[..., Rig],
                                                                    tmp_path: Path) -> None:
    """Once creator_info said 180 s, a 5-minute video fails in intake: no init, the answer's age shown."""
    rig = make_rig()
    store = Store(rig.state_dir)
    try:
        from watchfolder.intake import videocheck

        videocheck.remember_creator(store, "alice", nickname="Alice", max_seconds=180,
                                    now=rig.emulator.clock.now() - 3 * 3600)
    finally:
        store.close()
    rig.start()
    shutil.copyfile(FIXTURES / "five_minutes.mp4", tmp_path / "long.mp4")
    rig.drop("alice", "long.mp4", tmp_path / "long.mp4")

    sidecar: dict[str, Any] = rig.wait_sidecar("alice", "long.mp4", "failed")

    assert sidecar["error"]["code"] == "duration_check_failed"
    assert "Alice may post at most 3 min (180 s" in sidecar["error"]["message"]
    assert "3 h ago" in sidecar["error"]["message"]
    assert rig.emulator.records.requests == []


@pytest.mark.parametrize("claim", [float("inf"), float("nan"), -5.0])
def test_a_length_that_is_not_a_real_number_is_unknown(tmp_path: Path, claim: float) -> None:
    """A WebM whose Info claims an infinite, NaN or negative length: not refused on it, not written as NaN."""
    data = media_headers.webm(seconds=8).replace(struct.pack(">d", 8000.0), struct.pack(">d", claim))
    (tmp_path / "odd.webm").write_bytes(data)
    info = media.check_video(tmp_path / "odd.webm")
    assert info.duration_seconds is None and info.as_dict()["duration_s"] is None


def test_damaged_fragment_headers_leave_the_details_unknown(tmp_path: Path) -> None:
    """A fragment whose tfdt box is empty (as random data makes): the probe still answers from moov."""
    good = media_headers.full(b"tfdt", 1, 0, struct.pack(">Q", 0))
    empty = media_headers.box(b"tfdt")
    data = media_headers.fragmented_mp4(fragments=1)
    # keep every size right: the traf and moof shrink by what the tfdt lost
    lost = len(good) - len(empty)
    moof_at = data.index(b"moof") - 4
    traf_at = data.index(b"traf") - 4
    damaged = bytearray(data.replace(good, empty, 1))
    for at in (moof_at, traf_at):
        damaged[at:at + 4] = struct.pack(">I", struct.unpack(">I", damaged[at:at + 4])[0] - lost)
    (tmp_path / "frag.mp4").write_bytes(bytes(damaged))

    info = media.check_video(tmp_path / "frag.mp4")

    assert (info.codec, info.width, info.height, info.fps) == ("h264", 720, 1280, None)


def test_an_infinite_or_negative_length_or_rate_is_unknown_not_a_crash() -> None:
    """Headers can claim anything; a length of inf or a rate of NaN is reported as not known."""
    base = VideoInfo(container="mp4", content_type="video/mp4", size=1000, duration_seconds=12.0, width=1080,
                     height=1920, codec="h264", fps=30.0, audio="aac")
    for duration, fps in ((float("inf"), 30.0), (12.0, float("nan")), (-5.0, 30.0), (12.0, float("-inf"))):
        verdict = judge(dataclasses.replace(base, duration_seconds=duration, fps=fps), VideoLimits())
        assert verdict.accepted
        assert any("not checked here" in warning for warning in verdict.warnings)
