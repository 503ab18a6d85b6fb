"""Media checks: what we accept, what we refuse before any API call, and what we tell the user."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from watchfolder.core.errors import MediaError
from watchfolder.media import probe as media
from watchfolder.media import samples
from watchfolder.media.probe import check_image, check_photo_set, check_video


def _refused(check, path: Path) -> MediaError:
    with pytest.raises(MediaError) as caught:
        check(path)
    return caught.value


# --- videos accepted ----------------------------------------------------------------------


def test_mp4_sample_is_accepted_with_its_duration_and_dimensions(tmp_path: Path) -> None:
    """A valid MP4 reports container, content type, size, duration and the video track's size."""
    path = samples.write_mp4(tmp_path / "clip.mp4", duration_seconds=12.5, width=720, height=1280)

    info = check_video(path)

    assert info == media.VideoInfo("mp4", "video/mp4", path.stat().st_size, 12.5, 720, 1280, codec="h264")


def test_mov_is_told_apart_from_mp4_by_its_ftyp_brand(tmp_path: Path) -> None:
    """The 'qt  ' brand makes a MOV, uploaded as video/quicktime, whatever the file is called."""
    path = samples.write_mp4(tmp_path / "clip.mp4", brand="qt  ")

    info = check_video(path)

    assert (info.container, info.content_type) == ("mov", "video/quicktime")


def test_old_quicktime_file_without_ftyp_is_a_mov(tmp_path: Path) -> None:
    """Old QuickTime files start straight with moov or mdat; they are MOVs."""
    data = samples.write_mp4(tmp_path / "x.mp4").read_bytes()
    ftyp_size = struct.unpack(">I", data[:4])[0]
    path = tmp_path / "old.mov"
    path.write_bytes(data[ftyp_size:])

    assert check_video(path).container == "mov"


def test_webm_sample_is_accepted_with_its_duration_and_dimensions(tmp_path: Path) -> None:
    """A WebM is recognised by its EBML magic and DocType; Info and Tracks give duration and size."""
    path = samples.write_webm(tmp_path / "clip.webm", duration_seconds=3.25, width=720, height=1280)

    info = check_video(path)

    assert info == media.VideoInfo("webm", "video/webm", path.stat().st_size, 3.25, 720, 1280, codec="vp8")


def test_version_1_mvhd_and_64_bit_mdat_are_read(tmp_path: Path) -> None:
    """64-bit box forms (mvhd version 1, mdat with largesize) are accepted and read correctly."""
    path = samples.write_mp4(tmp_path / "clip.mp4", size=200_000, duration_seconds=61.0, mvhd_version=1,
                             large_mdat=True)

    info = check_video(path)

    assert (info.size, info.duration_seconds) == (200_000, 61.0)


def test_mdat_with_size_zero_runs_to_the_end_of_the_file(tmp_path: Path) -> None:
    """A last box of size 0 extends to the end of the file (ISO 14496-12), so it tiles."""
    data = bytearray(samples.write_mp4(tmp_path / "clip.mp4").read_bytes())
    at = data.index(b"mdat") - 4
    data[at:at + 4] = bytes(4)
    (tmp_path / "clip.mp4").write_bytes(data)

    assert check_video(tmp_path / "clip.mp4").container == "mp4"


def test_a_large_sparse_mp4_is_checked_without_reading_its_media(tmp_path: Path) -> None:
    """A 3 GB file is checked in a few reads; the mdat is skipped, not read."""
    path = samples.write_sparse_mp4(tmp_path / "big.mp4", 3 * 1000**3, duration_seconds=600)

    info = check_video(path)

    assert (info.size, info.duration_seconds) == (3 * 1000**3, 600.0)


# --- videos refused -----------------------------------------------------------------------


def test_mp4_cut_anywhere_is_refused_as_truncated(tmp_path: Path) -> None:
    """Whatever byte a copy stops at, the boxes no longer tile the file: truncated_video, never accepted."""
    path = samples.write_mp4(tmp_path / "clip.mp4", size=3000)

    for cut in range(2999, 7, -1):
        os.truncate(path, cut)
        error = _refused(check_video, path)
        assert error.code == "truncated_video", (cut, error)


def test_truncated_mp4_message_names_the_box_and_the_bytes_present(tmp_path: Path) -> None:
    """The user reads which box was cut and how much of it arrived."""
    path = samples.write_mp4(tmp_path / "clip.mp4", size=10_000)
    mdat_at = path.read_bytes().index(b"mdat") - 4
    os.truncate(path, 9_000)

    error = _refused(check_video, path)

    expected = f"the file ends inside box 'mdat' ({9_000 - mdat_at:,} of {10_000 - mdat_at:,} bytes)"
    assert error.message.startswith(expected)
    assert "incomplete" in error.message


def test_mp4_without_moov_is_refused(tmp_path: Path) -> None:
    """ftyp + mdat without the index (a recording that never finished) is refused before upload."""
    data = samples.write_mp4(tmp_path / "x.mp4").read_bytes()
    ftyp_end = struct.unpack(">I", data[:4])[0]
    mdat_at = data.index(b"mdat") - 4
    path = tmp_path / "clip.mp4"
    path.write_bytes(data[:ftyp_end] + data[mdat_at:])

    error = _refused(check_video, path)

    assert error.code == "truncated_video"
    assert "'moov'" in error.message


def test_bytes_appended_after_the_last_box_are_refused(tmp_path: Path) -> None:
    """Tiling is exact: trailing bytes that are no box mean the file is not what it claims."""
    path = samples.write_mp4(tmp_path / "clip.mp4")
    with open(path, "ab") as f:
        f.write(b"xyz")

    assert _refused(check_video, path).code == "truncated_video"


def test_audio_only_mp4_is_refused(tmp_path: Path) -> None:
    """An MP4 whose only track is sound is not a video post."""
    path = samples.write_mp4(tmp_path / "clip.mp4")
    path.write_bytes(path.read_bytes().replace(b"vide", b"soun", 1))

    error = _refused(check_video, path)

    assert (error.code, error.message) == ("unsupported_media", "the file has no video track (audio only?)")


def test_zero_byte_video_is_refused_as_empty(tmp_path: Path) -> None:
    """An empty .mp4 gets its own code, not a guess at its format."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"")

    assert _refused(check_video, path).code == "empty_file"


@pytest.mark.parametrize(
    ("make", "looks_like"),
    [
        (lambda p: p.write_text("just some notes\n"), "a text file"),
        (lambda p: samples.write_png(p, 8, 8), "a PNG image"),
        (lambda p: samples.write_jpeg(p, 8, 8), "a JPEG image"),
        (lambda p: p.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), "a HEIC image"),
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "no format we recognise"),
    ],
)
def test_non_video_content_is_refused_saying_what_it_looks_like(tmp_path: Path, make, looks_like: str) -> None:
    """Content decides, not the name: a clip.mp4 holding something else says what it holds."""
    path = tmp_path / "clip.mp4"
    make(path)

    error = _refused(check_video, path)

    assert error.code == "unsupported_media"
    assert error.message == f"not a video TikTok accepts (MP4, MOV or WebM): it looks like {looks_like}"


def test_matroska_that_is_not_webm_is_refused(tmp_path: Path) -> None:
    """An MKV shares WebM's magic but not its DocType; TikTok takes WebM only."""
    path = samples.write_webm(tmp_path / "clip.webm")
    path.write_bytes(path.read_bytes().replace(b"\x42\x82\x84webm", b"\x42\x82\x88matroska", 1))

    error = _refused(check_video, path)

    assert error.code == "unsupported_media"
    assert "Matroska" in error.message


@pytest.mark.parametrize("keep", [20, 200, 4000])
def test_truncated_webm_is_refused(tmp_path: Path, keep: int) -> None:
    """A WebM cut inside its header or its Segment is refused as truncated."""
    path = samples.write_webm(tmp_path / "clip.webm", size=5000)
    os.truncate(path, keep)

    assert _refused(check_video, path).code == "truncated_video"


def test_video_over_four_gib_is_refused_as_too_large(tmp_path: Path) -> None:
    """One byte over MAX_VIDEO_BYTES is refused before any upload is planned."""
    path = samples.write_sparse_mp4(tmp_path / "huge.mp4", media.MAX_VIDEO_BYTES + 1)

    error = _refused(check_video, path)

    assert error.code == "too_large"
    assert "4 GB" in error.message


def test_unreadable_video_raises_permission_error_untouched(tmp_path: Path, monkeypatch) -> None:
    """The caller reports "cannot read" itself, so PermissionError is not dressed up as MediaError."""
    path = samples.write_mp4(tmp_path / "clip.mp4")
    path.chmod(0)
    if os.geteuid() == 0:
        # Root reads files whatever their mode (CI runs as root): refuse this one path the way the
        # kernel refuses everyone else.
        real_open = open

        def refusing_open(file, *args, **kwargs):
            if os.fspath(file) == os.fspath(path):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", refusing_open)

    with pytest.raises(PermissionError):
        check_video(path)


# --- images -------------------------------------------------------------------------------


def test_jpeg_and_webp_samples_are_accepted_with_their_dimensions(tmp_path: Path) -> None:
    """Photo formats TikTok takes are read for format and size."""
    jpeg = samples.write_jpeg(tmp_path / "a.jpg", 1080, 1350)
    webp = samples.write_webp(tmp_path / "b.webp", 720, 960)

    assert check_image(jpeg) == media.ImageInfo(jpeg, "jpeg", 1080, 1350, jpeg.stat().st_size)
    assert check_image(webp) == media.ImageInfo(webp, "webp", 720, 960, webp.stat().st_size)


def _webp(kind: bytes, payload: bytes) -> bytes:
    chunk = kind + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (b"VP8 ", b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 480) + bytes(20)),
        (b"VP8X", b"\x00\x00\x00\x00" + (639).to_bytes(3, "little") + (479).to_bytes(3, "little")),
    ],
)
def test_lossy_and_extended_webp_headers_give_dimensions(tmp_path: Path, kind: bytes, payload: bytes) -> None:
    """VP8 (lossy) and VP8X (extended) WebPs are sized from their own headers."""
    path = tmp_path / "a.webp"
    path.write_bytes(_webp(kind, payload))

    assert (check_image(path).width, check_image(path).height) == (640, 480)


def test_png_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """TikTok does not list PNG; the user is told to convert or to let us convert."""
    path = samples.write_png(tmp_path / "a.png", 100, 100)

    error = _refused(check_image, path)

    assert (error.code, error.message) == (
        "unsupported_media", "PNG is not accepted by TikTok: convert to JPEG or set photos.convert: true")


def test_text_renamed_to_jpg_is_refused_as_text(tmp_path: Path) -> None:
    """A .jpg holding text is caught by content."""
    path = tmp_path / "photo.jpg"
    path.write_text("<html><body>404 not found</body></html>")

    error = _refused(check_image, path)

    assert error.code == "unsupported_media"
    assert error.message == "not an image TikTok accepts (JPEG or WebP): it looks like an HTML page"


def test_jpeg_cut_before_its_frame_header_is_refused(tmp_path: Path) -> None:
    """A JPEG that stops before its size is known is damaged; we say so instead of guessing."""
    data = samples.write_jpeg(tmp_path / "a.jpg", 64, 64).read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[:data.index(b"\xff\xc0")])

    assert "no readable frame header" in _refused(check_image, tmp_path / "a.jpg").message


def test_webp_shorter_than_its_riff_size_is_refused(tmp_path: Path) -> None:
    """A WebP copy that stopped early is refused before TikTok fails to decode it."""
    path = tmp_path / "a.webp"
    path.write_bytes(_webp(b"VP8 ", b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 480) + bytes(200))[:100])

    assert "ends early" in _refused(check_image, path).message


def test_image_of_exactly_20_mb_is_accepted_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    """The limit is 20,000,000 bytes: the smaller reading of TikTok's "20 MB"."""
    path = samples.write_jpeg(tmp_path / "a.jpg", 1080, 1080)
    os.truncate(path, media.MAX_IMAGE_BYTES)  # zeros after the end-of-image marker: decoders ignore them

    assert check_image(path).size == 20_000_000
    os.truncate(path, media.MAX_IMAGE_BYTES + 1)
    error = _refused(check_image, path)
    assert error.code == "too_large"
    assert "20 MB" in error.message


@pytest.mark.parametrize(("width", "height"), [(1080, 1920), (1920, 1080), (1080, 1080), (100, 1920)])
def test_images_within_1080p_are_accepted(tmp_path: Path, width: int, height: int) -> None:
    """Portrait and landscape 1080p, and anything smaller, pass."""
    assert check_image(samples.write_webp(tmp_path / "a.webp", width, height)).width == width


@pytest.mark.parametrize(("width", "height"), [(1081, 1920), (1080, 1921), (1200, 1200), (2000, 500)])
def test_images_beyond_1080p_are_refused(tmp_path: Path, width: int, height: int) -> None:
    """Shorter side over 1080 or longer side over 1920 is refused with the numbers and the way out."""
    error = _refused(check_image, samples.write_jpeg(tmp_path / "a.jpg", width, height))

    assert error.code == "image_too_large_resolution"
    assert error.message.startswith(f"{width}x{height} is beyond TikTok's 1080p limit")
    assert "photos.convert: true" in error.message


# --- photo sets ---------------------------------------------------------------------------


def test_photo_set_of_35_is_accepted_in_order(tmp_path: Path) -> None:
    """35 images is TikTok's maximum and is accepted, infos in the order given."""
    paths = [samples.write_jpeg(tmp_path / f"{i:02}.jpg", 32, 32, seed=i) for i in range(35)]

    assert [info.path for info in check_photo_set(paths)] == paths


def test_photo_set_of_36_is_refused(tmp_path: Path) -> None:
    """One image too many: the message says TikTok allows 35."""
    path = samples.write_jpeg(tmp_path / "a.jpg", 32, 32)

    error = _refused(check_photo_set, [path] * 36)

    assert error.code == "too_many_photos"
    assert "35" in error.message


def test_empty_photo_set_is_refused() -> None:
    """A folder with no usable image is its own error."""
    assert _refused(check_photo_set, []).code == "empty_photo_set"


def test_photo_set_error_starts_with_the_bad_images_name(tmp_path: Path) -> None:
    """In a set, the user learns which image is wrong."""
    good = samples.write_jpeg(tmp_path / "01.jpg", 32, 32)
    bad = samples.write_png(tmp_path / "02.png", 32, 32)

    error = _refused(check_photo_set, [good, bad])

    assert error.code == "unsupported_media"
    assert error.message.startswith("02.png: PNG is not accepted")


# --- ffprobe ------------------------------------------------------------------------------


def test_ffprobe_duration_is_none_without_ffprobe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ffprobe on PATH is normal: the duration is simply unknown."""
    monkeypatch.setenv("PATH", str(tmp_path))

    assert media.video_duration_ffprobe(samples.write_webm(tmp_path / "a.webm")) is None


def test_ffprobe_duration_is_read_from_what_ffprobe_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The number ffprobe prints becomes the duration; a file name starting with '-' is passed safely."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ffprobe"
    script.write_text('#!/bin/sh\nfor a; do last=$a; done\n[ "$last" = "file:$EXPECTED" ] && echo 42.125\n')
    script.chmod(0o755)
    video = samples.write_webm(tmp_path / "-a.webm")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("EXPECTED", str(video))

    assert media.video_duration_ffprobe(video) == 42.125


def test_ffprobe_duration_of_a_real_webm(tmp_path: Path) -> None:
    """With the real ffprobe installed, the WebM sample's duration comes back."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed; this check only runs where it is")

    assert media.video_duration_ffprobe(samples.write_webm(tmp_path / "a.webm", duration_seconds=4.0)) == 4.0
