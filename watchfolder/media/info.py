"""What a probe learns about a file, and the bounded reader every parser reads through.

A probe reads from one open binary file object (seek/read), never by path, so the caller decides how
the file is opened (``O_NOFOLLOW``, a descriptor held since intake). ``Source`` counts what is read and
stops at a budget: checking a 4 GB file costs the same few reads as checking a 4 MB one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

READ_BUDGET = 2 * 1024 * 1024  # bytes a probe may read from one file, whatever its size


class BudgetSpent(Exception):
    """The read budget is used up: whatever was learned so far stands, the rest stays unknown."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video's headers say; every detail is None where they do not say it."""

    container: str  # "mp4" | "mov" | "webm"
    content_type: str  # "video/mp4" | "video/quicktime" | "video/webm"
    size: int
    duration_seconds: float | None
    width: int | None  # as displayed (after a 90/270 degree rotation)
    height: int | None
    codec: str | None = None  # "h264" | "h265" | "vp8" | "vp9" | "av1" | "prores" | another fourcc
    fps: float | None = None  # frames per second; the mean for a variable frame rate
    audio: str | None = None  # "aac" | "opus" | "mp3" | …; None when there is no audio track
    fragmented: bool = False  # an MP4 whose samples are described in moof boxes

    def as_dict(self) -> dict[str, Any]:
        """The sidecar's ``media`` object (interface.md): container, codec, width, height, fps, duration_s, audio."""
        return {"container": self.container, "codec": self.codec, "width": self.width, "height": self.height,
                "fps": None if self.fps is None else round(self.fps, 3),
                "duration_s": None if self.duration_seconds is None else round(self.duration_seconds, 3),
                "audio": self.audio}


@dataclass(frozen=True)
class ImageInfo:
    """What check_image learned about one photo."""

    path: Path
    format: str  # "jpeg" | "webp" | "png"
    width: int
    height: int
    size: int


class Source:
    """A file object of known size, read at offsets, at most ``budget`` bytes in all (then BudgetSpent)."""

    def __init__(self, f: BinaryIO, size: int, budget: int = READ_BUDGET) -> None:
        self.f = f
        self.size = size
        self.budget = budget
        self.spent = 0

    def read_at(self, offset: int, count: int) -> bytes:
        """Return up to ``count`` bytes at ``offset`` (fewer at the end of the file)."""
        count = max(0, min(count, self.size - offset))
        if self.spent + count > self.budget:
            raise BudgetSpent(offset)
        self.f.seek(offset)
        data = self.f.read(count)
        self.spent += len(data)
        return data
