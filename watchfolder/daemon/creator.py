"""The creator's own longest video (creator_info's ``max_video_post_duration_sec``), kept and applied.

Direct mode asks creator_info before every post; inbox mode asks at most daily, when the sign-in has
``video.publish``. The answer is cached per account (``intake.videocheck``) so intake can refuse a
too-long video before any API call; here a worker judges the length once more before its init.
"""

from __future__ import annotations

import dataclasses
import json

from watchfolder.config import post as postsettings
from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.model import Item, Kind, Mode
from watchfolder.daemon.publisher import Publisher
from watchfolder.intake import videocheck
from watchfolder.logs import Logger
from watchfolder.media import verdict
from watchfolder.openfile import OpenMedia
from watchfolder.store.store import Store
from watchfolder.tiktok import codes
from watchfolder.tiktok.client import CreatorInfo

MAX_AGE = 86400.0  # inbox mode asks creator_info again once the cached answer is this old


def remember(store: Store, account: str, info: CreatorInfo, now: float) -> None:
    videocheck.remember_creator(store, account, nickname=info.nickname,
                                max_seconds=info.max_video_post_duration_sec, now=now)


def check_length(store: Store, publisher: Publisher, settings: Settings, item: Item, account: AccountSettings,
                 now: float, log: Logger, *, media: OpenMedia | None = None) -> None:
    """Raise TikTokError duration_check_failed (action FAIL) when the video is longer than the creator may post."""
    limit = videocheck.creator_limit(store, item.account, now)   # its age too: one read when it is known
    age = limit.age_seconds if limit is not None else videocheck.creator_age(store, item.account, now)
    if Mode(account.mode) is Mode.INBOX and (age is None or age > MAX_AGE):
        info = publisher.creator_info_if_allowed(item.account, log)
        if info is not None:
            remember(store, item.account, info, now)
            limit = videocheck.creator_limit(store, item.account, now)
    if limit is None:
        return
    refusal = verdict.check_duration(publisher.duration_of(item, media), settings.video_limits, limit)
    if refusal is not None:
        raise codes.refusal(refusal.code, refusal.message, advice=refusal.message)


def honour_interactions(store: Store, item: Item, info: CreatorInfo, now: float, log: Logger) -> Item:
    """Direct Post: comments, duets or stitches the creator has turned off are sent turned off, whatever
    the settings say; the sidecar's warnings and history say which (TikTok would refuse them otherwise)."""
    post = postsettings.from_dict(json.loads(item.post_info or "{}"))
    off = {"disable_comment": info.comment_disabled}
    if Kind(item.kind) is Kind.VIDEO:
        off |= {"disable_duet": info.duet_disabled, "disable_stitch": info.stitch_disabled}
    changed = [key for key, disabled in off.items() if disabled and not getattr(post, key)]
    if not changed:
        return item
    words = {"disable_comment": "comments", "disable_duet": "duets", "disable_stitch": "stitches"}
    what = ", ".join(words[key] for key in changed)
    note = (f"{info.nickname or item.account} has turned off {what} on TikTok, so this post is sent with "
            f"{what} turned off ({', '.join(f'{key}: true' for key in changed)})")
    log.info("interactions_disabled_by_creator", settings=changed)
    warnings = json.loads(item.warnings or "[]")
    if note not in warnings:
        warnings.append(note)
        store.note(item.id, "creator_settings", now=now, detail=note)
    post = dataclasses.replace(post, disable_comment=post.disable_comment or "disable_comment" in changed,
                               disable_duet=post.disable_duet or "disable_duet" in changed,
                               disable_stitch=post.disable_stitch or "disable_stitch" in changed)
    return store.update(item.id, now=now, post_info=postsettings.as_dict(post), warnings=warnings)
