"""One video's local verdict: probe its headers, then judge them against TikTok's limits.

Shared by intake (a file settling in an inbox), ``watchfolder check FILE…`` and the worker before its
init (where the creator's own maximum length may have become known). The creator's
``max_video_post_duration_sec`` is cached per account in the store's runtime table with the time
TikTok said it, so the verdict can be given before any API call and say how old that answer is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from watchfolder.config.settings import Settings
from watchfolder.core.errors import MediaError
from watchfolder.media import probe as media
from watchfolder.media.info import VideoInfo
from watchfolder.media.verdict import CreatorLimit, Verdict, judge
from watchfolder.store.store import Store

CREATOR_KEY = "creator_info:{account}"


class VideoRefused(MediaError):
    """A video outside TikTok's limits: TikTok's fail_reason as the code, and what the probe read."""

    def __init__(self, refusal: MediaError, info: VideoInfo, warnings: tuple[str, ...]) -> None:
        super().__init__(refusal.code, refusal.message)
        self.info = info
        self.warnings = warnings


def creator_limit(store: Store | None, account: str, now: float) -> CreatorLimit | None:
    """Return the account's cached creator maximum length (with its age), or None if TikTok never said."""
    if store is None:
        return None
    found = store.runtime(CREATOR_KEY.format(account=account))
    if found is None:
        return None
    value, at = found
    seconds = int(value.get("max_video_post_duration_sec") or 0)
    if not seconds:
        return None
    return CreatorLimit(seconds, max(0.0, now - at), str(value.get("nickname") or account))


def remember_creator(store: Store, account: str, *, nickname: str, max_seconds: int, now: float) -> None:
    """Cache what creator_info said about the account's longest video."""
    store.set_runtime(CREATOR_KEY.format(account=account),
                      {"max_video_post_duration_sec": max_seconds, "nickname": nickname}, now)


def creator_age(store: Store, account: str, now: float) -> float | None:
    """Seconds since creator_info was last cached for the account; None if never."""
    found = store.runtime(CREATOR_KEY.format(account=account))
    return None if found is None else now - found[1]


def examine(source: Path | BinaryIO, settings: Settings,
            creator: CreatorLimit | None) -> tuple[VideoInfo, Verdict]:
    """Given a video (an open binary file, or a path for a file not yet dropped), return what its headers
    say and the verdict; raise MediaError for a file that is not a usable video at all
    (unsupported_media, truncated_video, …)."""
    info = media.check_video(source) if isinstance(source, Path) else media.probe(source)
    return info, judge(info, settings.video_limits, creator)


def checked(source: Path | BinaryIO, settings: Settings,
            creator: CreatorLimit | None) -> tuple[VideoInfo, tuple[str, ...]]:
    """Like ``examine``, but raise VideoRefused for a video TikTok's limits refuse."""
    info, verdict = examine(source, settings, creator)
    if verdict.refusal is not None:
        raise VideoRefused(verdict.refusal, info, verdict.warnings)
    return info, verdict.warnings


def fields(info: VideoInfo, warnings: tuple[str, ...]) -> dict[str, Any]:
    """The store fields that carry the probe's findings to the sidecar and `status`."""
    return {"media": info.as_dict(), "warnings": list(warnings)}
