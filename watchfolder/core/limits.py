"""TikTok's documented video limits (reference §2.3), as one value the config may override. Standard library only.

Checked before any byte is sent (``media.verdict``). The documented limits refuse; the two the docs
do not confirm (an audio codec, a minimum length) only warn.
"""

from __future__ import annotations

import dataclasses

VIDEO_CODECS = ("h264", "h265", "vp8", "vp9")   # the codecs TikTok documents
AUDIO_CODECS = ("aac",)                          # assumed by everyone, named nowhere (UNCONFIRMED)


@dataclasses.dataclass(frozen=True, slots=True)
class VideoLimits:
    """What a video must be for TikTok to take it; each field is a key of the config's ``video_limits``."""

    codecs: tuple[str, ...] = VIDEO_CODECS
    min_fps: float = 23
    max_fps: float = 60
    min_side: int = 360            # pixels, for both width and height
    max_side: int = 4096
    max_duration: float = 600      # seconds: the API's 10 minutes (each creator may have less)
    warn_below_duration: float = 3  # seconds: TikTok states no minimum; others report 1-3 s (UNCONFIRMED)
    audio_codecs: tuple[str, ...] = AUDIO_CODECS  # other audio only warns (UNCONFIRMED)
