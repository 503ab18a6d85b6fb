"""Recognise media by content, before any API call: video containers, photo formats and their limits.

Only headers are read (the MP4 walk seeks past ``mdat``), so checking a 4 GB file costs a few reads.
Every refusal is a MediaError with one of our codes and a message a user can act on; messages never
name the file, so callers can prefix it. PermissionError propagates untouched (the caller says
"cannot read").
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from watchfolder.core.errors import MediaError

# TikTok says "4 GB" without saying which GB; 4 * 10**9 is the smaller reading, and the chunk plan
# (tiktok/chunks.MAX_VIDEO) uses the same number, so a video we take in can always be sent.
MAX_VIDEO_BYTES = 4_000_000_000
# TikTok says "20 MB" per photo without saying which MB; 20 * 10**6 is the smaller reading,
# so an image we accept is under the limit whichever one TikTok means.
MAX_IMAGE_BYTES = 20 * 1000 * 1000
MAX_PHOTOS = 35
# TikTok says photos are "maximum 1080p". 1080p names a 1920x1080 frame, and photos may be portrait
# or landscape, so we read it as: the shorter side at most 1080 and the longer side at most 1920.
MAX_IMAGE_SHORT_SIDE = 1080
MAX_IMAGE_LONG_SIDE = 1920

_MAX_TOP_LEVEL_BOXES = 10_000  # real files have a handful; this only bounds a hostile one
_HEAD = 4096


@dataclass(frozen=True)
class VideoInfo:
    """What check_video learned; duration and dimensions are None where the headers don't say."""

    container: str  # "mp4" | "mov" | "webm"
    content_type: str  # "video/mp4" | "video/quicktime" | "video/webm"
    size: int
    duration_seconds: float | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class ImageInfo:
    """What check_image learned about one photo."""

    path: Path
    format: str  # "jpeg" | "webp" | "png"
    width: int
    height: int
    size: int


def _describe(head: bytes) -> str:
    """Given a file's first bytes, say what it looks like ("a PNG image", "a text file", …)."""
    signatures = [
        (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
        (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"ID3", "an MP3 audio file"),
        (b"OggS", "an Ogg file"), (b"fLaC", "a FLAC audio file"), (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"), (b"\x1aE\xdf\xa3", "a Matroska (MKV) video"),
    ]
    for magic, what in signatures:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF":
        riff = {b"WEBP": "a WebP image", b"AVI ": "an AVI video", b"WAVE": "a WAV audio file"}
        return riff.get(head[8:12], "a RIFF file")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC image"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        if brand in (b"M4A ", b"M4B ", b"M4P ", b"F4A "):
            return "an M4A audio file"
        return "an MP4-family file"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\0" not in head and _is_utf8(head)):
        return "an HTML page" if b"<html" in head[:1024].lower() else "a text file"
    return "no format we recognise"


def _is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the end of the sample is still text
    return True


def _read_at(f: BinaryIO, offset: int, count: int) -> bytes:
    f.seek(offset)
    return f.read(count)


def _fmt_type(kind: bytes) -> str:
    return kind.decode("latin-1") if all(32 <= c < 127 for c in kind) else kind.hex()


def _boxes(f: BinaryIO, start: int, end: int, *, lenient: bool = False) -> list[tuple[bytes, int, int]]:
    """Given a byte span, return its boxes as (type, payload start, box end).

    Raise MediaError if they don't tile the span exactly; with ``lenient``, return the boxes that
    parsed instead (inner boxes only feed the details, which must never refuse a playable file).
    """
    boxes: list[tuple[bytes, int, int]] = []
    offset = start
    while offset < end:
        problem = _box_problem(f, offset, end) if len(boxes) < _MAX_TOP_LEVEL_BOXES else MediaError(
            "unsupported_media", f"more than {_MAX_TOP_LEVEL_BOXES:,} boxes: not a usable video")
        if isinstance(problem, MediaError):
            if lenient:
                break
            raise problem
        boxes.append(problem)
        offset = problem[2]
    return boxes


def _box_problem(f: BinaryIO, offset: int, end: int) -> tuple[bytes, int, int] | MediaError:
    """Given a box's offset, return (type, payload start, box end), or the MediaError saying why not."""
    header = _read_at(f, offset, min(16, end - offset))
    size, kind = struct.unpack_from(">I4s", header) if len(header) >= 8 else (0, b"")
    header_len = 16 if size == 1 else 8  # size 1: a 64-bit largesize follows the type
    if len(header) < header_len:
        where = f"the header of box '{_fmt_type(kind)}'" if kind else f"a box header at byte {offset:,}"
        return MediaError("truncated_video", f"the file ends inside {where}: the copy looks incomplete")
    if size == 1:
        size = struct.unpack_from(">Q", header, 8)[0]
    elif size == 0:
        size = end - offset  # size 0: the box runs to the end of the file
    if size < header_len:
        return MediaError("truncated_video", f"box '{_fmt_type(kind)}' at byte {offset:,} declares an "
                          f"impossible size ({size:,}): the file is damaged")
    if offset + size > end:
        return MediaError("truncated_video", f"the file ends inside box '{_fmt_type(kind)}' ({end - offset:,} "
                          f"of {size:,} bytes): the copy looks incomplete")
    return kind, offset + header_len, offset + size


def _child(f: BinaryIO, payload: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, start, stop in _boxes(f, payload, end, lenient=True):
        if k == kind:
            return start, stop
    return None


def _mp4_details(f: BinaryIO, moov: tuple[int, int]) -> tuple[float | None, int | None, int | None]:
    """Given moov's span, return (duration from mvhd, width and height of the first video track as displayed)."""
    duration = width = height = None
    saw_track = has_video = False
    for kind, start, stop in _boxes(f, *moov, lenient=True):
        if kind == b"mvhd":
            data = _read_at(f, start, 32)
            fmt = ">4xQQIQ" if data[:1] == b"\x01" else ">4xIIII"
            if len(data) >= struct.calcsize(fmt):
                _, _, timescale, units = struct.unpack_from(fmt, data)
                unknown = units in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
                duration = units / timescale if timescale and not unknown else None
        elif kind == b"trak" and not has_video:
            saw_track = True
            mdia = _child(f, start, stop, b"mdia")
            hdlr = _child(f, *mdia, b"hdlr") if mdia else None
            if hdlr is None or _read_at(f, hdlr[0] + 8, 4) != b"vide":
                continue
            has_video = True
            tkhd = _child(f, start, stop, b"tkhd")
            data = _read_at(f, tkhd[0], 96) if tkhd else b""
            base = 52 if data[:1] == b"\x01" else 40  # the 3x3 matrix follows the versioned times
            if len(data) >= base + 44:
                a, b = struct.unpack_from(">ii", data, base)
                width, height = (v >> 16 for v in struct.unpack_from(">II", data, base + 36))
                if a == 0 and b != 0:  # a 90 or 270 degree rotation: show what a viewer sees
                    width, height = height, width
    if saw_track and not has_video:
        raise MediaError("unsupported_media", "the file has no video track (audio only?)")
    return duration, width, height


def _check_mp4(f: BinaryIO, head: bytes, size: int) -> VideoInfo:
    container = "mov" if head[4:8] != b"ftyp" or head[8:12] == b"qt  " else "mp4"
    boxes = _boxes(f, 0, size)
    found = {kind: (start, stop) for kind, start, stop in reversed(boxes)}
    for needed, why in ((b"moov", "the index of the video"), (b"mdat", "the media data")):
        if needed not in found:
            raise MediaError("truncated_video", f"there is no '{needed.decode()}' box ({why}): the recording "
                             "looks unfinished or the file is damaged")
    duration, width, height = _mp4_details(f, found[b"moov"])
    content_type = "video/quicktime" if container == "mov" else "video/mp4"
    return VideoInfo(container, content_type, size, duration, width, height)


def _ebml(buf: bytes, pos: int) -> tuple[int, int, int | None]:
    """Given a buffer and position, return (element id, data start, data size or None if unknown)."""
    values = []
    for keep_marker in (True, False):
        length = 9 - buf[pos].bit_length()  # IndexError past the end; a 0 byte gives 9, caught below
        if length > 8 or pos + length > len(buf):
            raise IndexError(pos)
        value = int.from_bytes(buf[pos:pos + length], "big")
        if not keep_marker:
            value &= (1 << (7 * length)) - 1
            value = -1 if value == (1 << (7 * length)) - 1 else value  # all ones: size unknown (live stream)
        values.append(value)
        pos += length
    return values[0], pos, (values[1] if values[1] >= 0 else None)


def _ebml_list(buf: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
    """Given a span of a buffer, return its complete child elements as (id, data), stopping at the first cut one."""
    found, pos, end = [], start, min(len(buf), len(buf) if end is None else end)
    while pos < end:
        element, data, size = _ebml(buf, pos)
        if size is None or data + size > len(buf):
            break
        found.append((element, buf[data:data + size]))
        pos = data + size
    return found


def _check_webm(f: BinaryIO, size: int) -> VideoInfo:
    buf = _read_at(f, 0, 1024 * 1024)  # Info and Tracks sit before the first Cluster, near the start
    try:
        _, data, header_size = _ebml(buf, 0)
        if header_size is None or data + header_size > len(buf):
            raise IndexError(data)
        if dict(_ebml_list(buf, data, data + header_size)).get(0x4282, b"").rstrip(b"\0") != b"webm":
            raise MediaError("unsupported_media", "not a video TikTok accepts (MP4, MOV or WebM): it looks like "
                             "a Matroska (MKV) video; remux it to MP4 or WebM")
        element, seg_data, seg_size = _ebml(buf, data + header_size)
    except IndexError:
        raise MediaError("truncated_video", "the file ends inside the WebM header: the copy looks incomplete") from None
    if element != 0x18538067:
        raise MediaError("truncated_video", "there is no WebM Segment after the header: the file is damaged")
    if seg_size is not None and seg_data + seg_size > size:
        raise MediaError("truncated_video", f"the file ends inside the WebM Segment ({size - seg_data:,} of "
                         f"{seg_size:,} bytes): the copy looks incomplete")
    duration = width = height = None
    try:  # the details are a courtesy: a damaged Info or Tracks leaves them unknown
        segment = dict(_ebml_list(buf, seg_data, None if seg_size is None else seg_data + seg_size))
        info = dict(_ebml_list(segment.get(0x1549A966, b"")))
        if len(raw := info.get(0x4489, b"")) in (4, 8):
            scale = int.from_bytes(info.get(0x2AD7B1, b""), "big") or 1_000_000  # nanoseconds per tick
            duration = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0] * scale / 1e9
        entries = [dict(_ebml_list(entry)) for _, entry in _ebml_list(segment.get(0x1654AE6B, b""))]
        video = dict(_ebml_list(next((e.get(0xE0, b"") for e in entries if e.get(0x83) == b"\x01"), b"")))
        width = int.from_bytes(video.get(0xB0, b""), "big") or None
        height = int.from_bytes(video.get(0xBA, b""), "big") or None
    except (IndexError, struct.error):
        pass
    return VideoInfo("webm", "video/webm", size, duration, width, height)


def check_video(path: Path) -> VideoInfo:
    """Given a video file, return what it is by content; raise MediaError if TikTok would refuse it.

    Codes: empty_file, unsupported_media (not MP4/MOV/WebM, saying what it looks like), too_large
    (over MAX_VIDEO_BYTES), truncated_video (MP4/MOV boxes that do not tile the file or lack moov or
    mdat; a WebM Segment longer than the file).
    """
    size = os.stat(path).st_size
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        is_bmff = head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip")
        if head[4:8] == b"ftyp" and _describe(head) != "an MP4-family file":
            is_bmff = False
        if not is_bmff and not head.startswith(b"\x1aE\xdf\xa3"):
            raise MediaError("unsupported_media",
                             f"not a video TikTok accepts (MP4, MOV or WebM): it looks like {_describe(head)}")
        if size > MAX_VIDEO_BYTES:
            raise MediaError("too_large", f"{size:,} bytes is over TikTok's 4 GB limit for a video "
                             f"({MAX_VIDEO_BYTES:,} bytes)")
        return _check_mp4(f, head, size) if is_bmff else _check_webm(f, size)


def _jpeg_size(f: BinaryIO) -> tuple[int, int]:
    """Given a JPEG after its SOI marker, walk the segments to the frame header and return (width, height)."""
    f.seek(2)
    for _ in range(10_000):
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            break
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            break
        length = f.read(2)
        if len(length) < 2:
            break
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = f.read(5)
            if len(frame) == 5:
                height, width = struct.unpack(">xHH", frame)
                if width and height:
                    return width, height
            break
        f.seek(struct.unpack(">H", length)[0] - 2, os.SEEK_CUR)
    raise MediaError("unsupported_media", "the JPEG has no readable frame header: it is damaged or incomplete")


def _webp_size(head: bytes, size: int) -> tuple[int, int]:
    declared = struct.unpack_from("<I", head, 4)[0] + 8
    if declared > size:
        raise MediaError("unsupported_media", f"the WebP ends early ({size:,} of {declared:,} bytes): "
                         "the copy looks incomplete")
    kind, data = head[12:16], head[20:30]
    if kind == b"VP8 " and len(data) == 10 and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 6)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = struct.unpack_from("<I", data, 1)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(data) == 10:
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    raise MediaError("unsupported_media", "the WebP has no readable image header: it is damaged")


def check_image(path: Path) -> ImageInfo:
    """Given a photo file, return its format and dimensions; raise MediaError if TikTok would refuse it.

    Codes: empty_file, unsupported_media (not JPEG/WebP, PNG, damaged), too_large (over
    MAX_IMAGE_BYTES), image_too_large_resolution (beyond MAX_IMAGE_SHORT_SIDE x MAX_IMAGE_LONG_SIDE).
    """
    size = os.stat(path).st_size
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        what = _describe(head)
        if what == "a PNG image":
            raise MediaError("unsupported_media",
                             "PNG is not accepted by TikTok: convert to JPEG or set photos.convert: true")
        if what == "a HEIC image":
            raise MediaError("unsupported_media", "HEIC is not accepted by TikTok: convert to JPEG")
        if what not in ("a JPEG image", "a WebP image"):
            raise MediaError("unsupported_media", f"not an image TikTok accepts (JPEG or WebP): it looks like {what}")
        if size > MAX_IMAGE_BYTES:
            raise MediaError("too_large", f"{size:,} bytes is over TikTok's 20 MB limit for a photo "
                             f"({MAX_IMAGE_BYTES:,} bytes)")
        fmt = "jpeg" if what == "a JPEG image" else "webp"
        width, height = _jpeg_size(f) if fmt == "jpeg" else _webp_size(head, size)
    if min(width, height) > MAX_IMAGE_SHORT_SIDE or max(width, height) > MAX_IMAGE_LONG_SIDE:
        raise MediaError("image_too_large_resolution",
                         f"{width}x{height} is beyond TikTok's 1080p limit for photos (at most "
                         f"{MAX_IMAGE_SHORT_SIDE} on the shorter side and {MAX_IMAGE_LONG_SIDE} on the longer): "
                         "downscale it or set photos.convert: true")
    return ImageInfo(Path(path), fmt, width, height, size)


def check_photo_set(paths: Sequence[Path]) -> list[ImageInfo]:
    """Given a photo post's images in order, check each and return their infos.

    Raise MediaError empty_photo_set for none, too_many_photos for more than MAX_PHOTOS, or the first
    bad image's error with its message prefixed by the image's name.
    """
    if not paths:
        raise MediaError("empty_photo_set", "the folder holds no .jpg, .jpeg or .webp image")
    if len(paths) > MAX_PHOTOS:
        raise MediaError("too_many_photos", f"{len(paths)} images: TikTok allows at most {MAX_PHOTOS} in one post")
    infos = []
    for path in paths:
        try:
            infos.append(check_image(path))
        except MediaError as exc:
            raise MediaError(exc.code, f"{Path(path).name}: {exc.message}") from exc
    return infos


def video_duration_ffprobe(path: Path, *, timeout: float = 30, pass_fds: tuple[int, ...] = ()) -> float | None:
    """Given a video, return its duration in seconds from ffprobe; None if ffprobe is absent or cannot tell.

    ``pass_fds``: descriptors ffprobe inherits, so ``path`` may be ``/proc/self/fd/N`` of an open file.
    """
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f"file:{path}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                              pass_fds=pass_fds)
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
