"""Content checks TikTok runs after receiving media: the container by magic bytes (reference §2.3, §2.4),
and an MP4/MOV's duration from its ``mvhd`` box when one can be found."""

from __future__ import annotations

import struct
from typing import BinaryIO

HEAD_BYTES = 64  # enough of the start of a file for every check below

# QuickTime files written before ``ftyp`` existed start with one of these top-level boxes.
_LEGACY_MOV_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def video_container(head: bytes) -> str | None:
    """Given the first bytes of a video, return "mp4", "mov" or "webm", or None if it is none of them."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _LEGACY_MOV_BOXES:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "webm"
    return None


def image_format(head: bytes) -> str | None:
    """Given the first bytes of an image, return "jpeg", "webp" or "png", or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


def mp4_duration_seconds(stream: BinaryIO, size: int) -> float | None:
    """Given an MP4/MOV file open for reading and its size, return its duration from ``moov/mvhd``.

    Return None when the boxes cannot be walked or carry no duration: the check is then skipped rather
    than guessed. Only box headers are read, so a large file costs a few seeks.
    """
    moov = _find_box(stream, 0, size, b"moov")
    if moov is None:
        return None
    mvhd = _find_box(stream, moov[0], moov[1], b"mvhd")
    if mvhd is None:
        return None
    stream.seek(mvhd[0])
    body = stream.read(min(32, mvhd[1] - mvhd[0]))
    if len(body) < 20:
        return None
    if body[0] == 1:  # version 1: 64-bit times
        if len(body) < 32:
            return None
        timescale, duration = struct.unpack(">IQ", body[20:32])
    else:
        timescale, duration = struct.unpack(">II", body[12:20])
    return duration / timescale if timescale else None


def _find_box(stream: BinaryIO, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """Return (body start, body end) of the first ``kind`` box between ``start`` and ``end``, or None."""
    position = start
    while position + 8 <= end:
        stream.seek(position)
        header = stream.read(16)
        if len(header) < 8:
            return None
        box_size, box_kind = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                return None
            box_size = struct.unpack(">Q", header[8:16])[0]
            header_size = 16
        elif box_size == 0:
            box_size = end - position
        if box_size < header_size or position + box_size > end:
            return None
        if box_kind == kind:
            return position + header_size, position + box_size
        position += box_size
    return None
