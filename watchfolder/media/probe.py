"""Recognise a video by content, before any API call: ``probe(fileobj)`` over one open file.

The container decides the parser (``bmff`` for MP4/MOV, ``ebml`` for WebM); only headers are read,
through a budget (``info.Source``), so a 4 GB file costs a few reads. Every refusal is a MediaError
with one of our codes and a message a user can act on; messages never name the file, so callers can
prefix it. PermissionError propagates untouched (the caller says "cannot read"). Whether TikTok's
limits are met is ``verdict``'s question; photos are ``images``'; this module also keeps the names
older callers import from it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import BinaryIO

from watchfolder.core.errors import MediaError
from watchfolder.media.bmff import boxes as _boxes
from watchfolder.media.bmff import probe_bmff
from watchfolder.media.ebml import children as _ebml_list
from watchfolder.media.ebml import element as _ebml
from watchfolder.media.ebml import probe_ebml
from watchfolder.media.ffprobe import video_duration_ffprobe
from watchfolder.media.images import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_LONG_SIDE,
    MAX_IMAGE_SHORT_SIDE,
    MAX_PHOTOS,
    check_image,
    check_photo_set,
)
from watchfolder.media.info import READ_BUDGET, BudgetSpent, ImageInfo, Source, VideoInfo
from watchfolder.media.sniff import HEAD, describe, video_family
from watchfolder.media.sniff import describe as _describe

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_LONG_SIDE", "MAX_IMAGE_SHORT_SIDE", "MAX_PHOTOS", "MAX_VIDEO_BYTES",
           "ImageInfo", "VideoInfo", "_boxes", "_describe", "_ebml", "_ebml_list", "check_image",
           "check_photo_set", "check_video", "probe", "video_duration_ffprobe"]

# TikTok says "4 GB" without saying which GB; 4 * 10**9 is the smaller reading, and the chunk plan
# (tiktok/chunks.MAX_VIDEO) uses the same number, so a video we take in can always be sent.
MAX_VIDEO_BYTES = 4_000_000_000


def probe(f: BinaryIO, *, budget: int = READ_BUDGET) -> VideoInfo:
    """Given a video open for binary reading (seekable), return what it is by content.

    Raise MediaError: empty_file, unsupported_media (not MP4/MOV/WebM, saying what it looks like, or
    headers that do not fit in the budget), too_large (over MAX_VIDEO_BYTES), truncated_video (MP4/MOV
    boxes that do not tile the file or lack moov or mdat; a WebM Segment longer than the file). At most
    ``budget`` bytes are read.
    """
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    try:
        return _probe(Source(f, size, budget), size)
    except BudgetSpent:  # the parsers keep what they read within the budget; past the essentials, refuse
        raise MediaError("unsupported_media", f"the headers do not fit in the {budget:,} bytes read to check "
                         "a video: not a usable video") from None


def _probe(src: Source, size: int) -> VideoInfo:
    head = src.read_at(0, HEAD)
    family = video_family(head)
    if family is None:
        raise MediaError("unsupported_media",
                         f"not a video TikTok accepts (MP4, MOV or WebM): it looks like {describe(head)}")
    if size > MAX_VIDEO_BYTES:
        raise MediaError("too_large", f"{size:,} bytes is over TikTok's 4 GB limit for a video "
                         f"({MAX_VIDEO_BYTES:,} bytes)")
    info = probe_bmff(src, head) if family == "bmff" else probe_ebml(src)
    return _plausible(info)


def _plausible(info: VideoInfo) -> VideoInfo:
    """Headers can claim anything: a length or rate that is not a positive finite number is unknown."""
    def real(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) and value > 0 else None

    return dataclasses.replace(info, duration_seconds=real(info.duration_seconds), fps=real(info.fps))


def check_video(path: Path) -> VideoInfo:
    """Given a video file's path, open it and ``probe`` it (the daemon probes the item's open descriptor
    instead: ``openfile.OpenMedia``)."""
    with open(path, "rb") as f:
        return probe(f)
