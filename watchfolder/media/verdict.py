"""Would TikTok take this video? TikTok's documented limits, judged locally before any byte is sent.

A video outside a documented limit is refused with TikTok's own fail_reason as the code
(``file_format_check_failed``, ``picture_size_check_failed``, ``frame_rate_check_failed``,
``duration_check_failed``), the measured value, the limit and an ffmpeg line that fixes it. What the
docs do not confirm (the audio codec, a minimum length) and what the headers do not say only warn.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from watchfolder.core.errors import MediaError
from watchfolder.core.limits import VideoLimits
from watchfolder.media.info import VideoInfo

CODEC_NAMES = {"h264": "H.264", "h265": "H.265", "vp8": "VP8", "vp9": "VP9", "av1": "AV1", "prores": "ProRes",
               "mpeg4": "MPEG-4 Part 2", "mjpeg": "Motion JPEG"}
LOCAL_CODES = ("file_format_check_failed", "picture_size_check_failed", "frame_rate_check_failed",
               "duration_check_failed")


@dataclass(frozen=True)
class CreatorLimit:
    """The creator's ``max_video_post_duration_sec`` from creator_info, and how old that answer is."""

    seconds: int
    age_seconds: float
    who: str = "this creator"


@dataclass(frozen=True)
class Verdict:
    """``refusal`` is None when TikTok's documented limits are met; ``warnings`` are for the sidecar."""

    refusal: MediaError | None
    warnings: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.refusal is None


def judge(info: VideoInfo, limits: VideoLimits, creator: CreatorLimit | None = None) -> Verdict:
    """Given what the probe read, the limits (the config's) and the creator's own maximum length if known,
    return the verdict. Checks come in TikTok's order of cost to the user: format, size, rate, length."""
    info = _known(info)
    warnings: list[str] = []
    for check in (_format, _picture, _rate, _duration):
        refusal = check(info, limits, creator)
        if refusal is not None:
            return Verdict(refusal, tuple(warnings))
    if info.audio is not None and info.audio not in limits.audio_codecs:
        allowed = " or ".join(a.upper() for a in limits.audio_codecs) or "any"
        warnings.append(f"the audio is {info.audio.upper()}: TikTok's docs name no audio codec and {allowed} "
                        "is the safe choice (unconfirmed); if TikTok refuses it, re-encode the sound, e.g. "
                        "`ffmpeg -i in.mp4 -c:v copy -c:a aac out.mp4`")
    if info.duration_seconds is not None and info.duration_seconds < limits.warn_below_duration:
        warnings.append(f"{_seconds(info.duration_seconds)} long: TikTok states no minimum length, but some "
                        f"report refusals under {_seconds(limits.warn_below_duration)} (unconfirmed)")
    unknown = [what for what, value in (("codec", info.codec), ("picture size", info.width),
                                        ("frame rate", info.fps), ("length", info.duration_seconds))
               if value is None]
    if unknown:
        warnings.append(f"the headers do not give the {', '.join(unknown)}: not checked here, TikTok will")
    return Verdict(None, tuple(warnings))


def _known(info: VideoInfo) -> VideoInfo:
    """A length or frame rate that is not a positive finite number says nothing: treat it as unknown."""
    def sane(value: float | None) -> float | None:
        return value if value is not None and math.isfinite(value) and value > 0 else None
    return dataclasses.replace(info, duration_seconds=sane(info.duration_seconds), fps=sane(info.fps))


def _format(info: VideoInfo, limits: VideoLimits, _: CreatorLimit | None) -> MediaError | None:
    if info.codec is None or info.codec in limits.codecs:
        return None
    allowed = ", ".join(CODEC_NAMES.get(c, c) for c in limits.codecs)
    return MediaError("file_format_check_failed",
                      f"the video is {CODEC_NAMES.get(info.codec, info.codec)} in {info.container.upper()}: "
                      f"TikTok takes {allowed}; re-encode, e.g. `ffmpeg -i in.{info.container} -c:v libx264 "
                      "-c:a aac out.mp4`")


def _picture(info: VideoInfo, limits: VideoLimits, _: CreatorLimit | None) -> MediaError | None:
    if info.width is None or info.height is None:
        return None
    small, large = min(info.width, info.height), max(info.width, info.height)
    if small >= limits.min_side and large <= limits.max_side:
        return None
    if small < limits.min_side:
        fix = "scale it up, e.g. `ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4`" if info.height == small else \
            "scale it up, e.g. `ffmpeg -i in.mp4 -vf scale=720:-2 out.mp4`"
    else:
        fix = "scale it down, e.g. `ffmpeg -i in.mp4 -vf scale=-2:2160 out.mp4`" if info.height == large else \
            "scale it down, e.g. `ffmpeg -i in.mp4 -vf scale=2160:-2 out.mp4`"
    return MediaError("picture_size_check_failed",
                      f"{info.width}x{info.height} px: TikTok takes {limits.min_side}–{limits.max_side} px for both "
                      f"width and height; {fix}")


def _rate(info: VideoInfo, limits: VideoLimits, _: CreatorLimit | None) -> MediaError | None:
    if info.fps is None or limits.min_fps - 0.01 <= info.fps <= limits.max_fps + 0.01:
        return None  # 23.976 and 59.94 are what cameras call 24 and 60: a hundredth of slack
    target = 30 if info.fps > limits.max_fps else max(30, int(limits.min_fps) + 1)
    return MediaError("frame_rate_check_failed",
                      f"{_resolution(info)} at {_fps(info.fps)} fps: TikTok takes {_fps(limits.min_fps)}–"
                      f"{_fps(limits.max_fps)} fps; re-encode, e.g. `ffmpeg -i in.{info.container} -r {target} "
                      "out.mp4`")


def _duration(info: VideoInfo, limits: VideoLimits, creator: CreatorLimit | None) -> MediaError | None:
    return check_duration(info.duration_seconds, limits, creator)


def check_duration(length: float | None, limits: VideoLimits, creator: CreatorLimit | None) -> MediaError | None:
    """Given a video's length (None: unknown, not checked), return the duration_check_failed refusal or None."""
    if length is None:
        return None
    fix = "trim it, e.g. `ffmpeg -i in.mp4 -t {limit} -c copy out.mp4`"
    if length > limits.max_duration + 0.5:
        limit = limits.max_duration
        return MediaError("duration_check_failed",
                          f"{_seconds(length)} long: TikTok's API takes at most {_seconds(limit)} "
                          f"({limit:g} s); " + fix.format(limit=f"{limit:g}"))
    if creator is not None and creator.seconds and length > creator.seconds + 0.5:
        return MediaError("duration_check_failed",
                          f"{_seconds(length)} long: {creator.who} may post at most {_seconds(creator.seconds)} "
                          f"({creator.seconds} s, max_video_post_duration_sec from TikTok's creator_info "
                          f"{_age(creator.age_seconds)}); " + fix.format(limit=creator.seconds))
    return None


def _resolution(info: VideoInfo) -> str:
    if info.width is None or info.height is None:
        return "the video"
    short = min(info.width, info.height)
    names = ((4320, "8K"), (2160, "4K"), (1440, "1440p"), (1080, "1080p"), (720, "720p"))
    return next((name for px, name in names if short >= px), f"{info.width}x{info.height}")


def _fps(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s".replace(".0 s", " s")
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min" + (f" {seconds} s" if seconds else "")


def _age(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    if seconds < 129600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"
