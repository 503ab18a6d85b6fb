"""The creator's own longest video (creator_info's ``max_video_post_duration_sec``), kept and applied.

Direct mode asks creator_info before every post; inbox mode asks at most daily, when the sign-in has
``video.publish``. The answer is cached per account (``intake.videocheck``) so intake can refuse a
too-long video before any API call; here a worker judges the length once more before its init.
"""

from __future__ import annotations

from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.errors import TikTokError
from watchfolder.core.model import Action, Item, Mode
from watchfolder.daemon.publisher import Publisher
from watchfolder.intake import videocheck
from watchfolder.logs import Logger
from watchfolder.media import verdict
from watchfolder.openfile import OpenMedia
from watchfolder.store.store import Store
from watchfolder.tiktok.client import CreatorInfo

MAX_AGE = 86400.0  # inbox mode asks creator_info again once the cached answer is this old


def remember(store: Store, account: str, info: CreatorInfo, now: float) -> None:
    videocheck.remember_creator(store, account, nickname=info.nickname,
                                max_seconds=info.max_video_post_duration_sec, now=now)


def check_length(store: Store, publisher: Publisher, settings: Settings, item: Item, account: AccountSettings,
                 now: float, log: Logger, *, media: OpenMedia | None = None) -> None:
    """Raise TikTokError duration_check_failed (action FAIL) when the video is longer than the creator may post."""
    age = videocheck.creator_age(store, item.account, now)
    if Mode(account.mode) is Mode.INBOX and (age is None or age > MAX_AGE):
        info = publisher.creator_info_if_allowed(item.account, log)
        if info is not None:
            remember(store, item.account, info, now)
    limit = videocheck.creator_limit(store, item.account, now)
    if limit is None:
        return
    refusal = verdict.check_duration(publisher.duration_of(item, media), settings.video_limits, limit)
    if refusal is not None:
        raise TikTokError(refusal.code, refusal.message, action=Action.FAIL, advice=refusal.message)
