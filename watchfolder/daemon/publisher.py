"""The publisher: builds TikTok requests for an item (video or photos, inbox or direct, file or URL).

Shared by the worker threads: the token manager and media host are thread-safe; each worker gets
its own client and chunk uploader (one persistent connection each).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchfolder.config import post as postsettings
from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.errors import AuthError, MediaError, TikTokError, WatchfolderError
from watchfolder.core.model import SCOPE_FOR_MODE, Item, Kind, Mode, VideoSource
from watchfolder.core.text import display_name
from watchfolder.daemon.pacing import Pacer
from watchfolder.intake import entries
from watchfolder.logs import Logger
from watchfolder.media import convert, probe
from watchfolder.mediahost.host import MediaHost, Staged
from watchfolder.openfile import OpenFolder, OpenMedia
from watchfolder.tiktok import chunks, codes
from watchfolder.tiktok.client import CreatorInfo, PublishStatus, TikTokClient
from watchfolder.tiktok.sendbody import Hasher
from watchfolder.tiktok.tokens import TokenManager, TokenStore
from watchfolder.tiktok.upload import ChunkAck, ChunkUploader

UPLOAD_URL_LIFETIME = 3600.0   # TikTok: an upload_url is valid for one hour …
UPLOAD_URL_MARGIN = 120.0      # … and we stop trusting it a little before that
FINAL_STATUSES = frozenset({"SEND_TO_USER_INBOX", "PUBLISH_COMPLETE", "FAILED"})  # nothing left to cancel


class Publisher:
    """Talks to TikTok on behalf of one worker thread."""

    def __init__(self, *, settings: Settings, tokens: TokenManager, token_store: TokenStore, client: TikTokClient,
                 uploader: ChunkUploader, pacer: Pacer, mediahost: MediaHost | None,
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.tokens = tokens
        self.token_store = token_store
        self.client = client
        self.uploader = uploader
        self.pacer = pacer
        self.mediahost = mediahost
        self.clock = clock
        self._last_token: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()
        self.uploader.close()

    # ---- tokens ----------------------------------------------------------------------------

    def token(self, account: str) -> str:
        token = self.tokens.access_token(account)
        self._last_token[account] = token
        return token

    def refresh(self, account: str, log: Logger) -> None:
        log.info("token_refresh_after_rejection")
        self.tokens.refresh(account, rejected_token=self._last_token.get(account))

    def _record_scope(self, account: str, mode: Mode) -> None:
        """An accepted init proves the mode's posting scope: record it where the scopes were unknown."""
        try:
            self.tokens.record_proven_scope(account, SCOPE_FOR_MODE[mode])
        except (WatchfolderError, OSError):
            pass  # only bookkeeping for `check`; the upload goes on

    def tokens_stamp(self, account: str) -> float | None:
        """When the account's tokens were written (None: none, or damaged); never raises, as it runs while
        the account is being paused for that very reason."""
        return self.token_store.stamp(account)

    # ---- requests ------------------------------------------------------------------------------

    def path_of(self, item: Item) -> Path:
        return self.settings.root / item.account / item.folder / item.name

    def post_settings(self, item: Item) -> postsettings.PostSettings:
        stored = json.loads(item.post_info or "{}")
        return postsettings.from_dict(stored)

    def check_creator(self, item: Item, account: AccountSettings, log: Logger) -> CreatorInfo:
        """Direct Post: ask creator_info before each post; refuse what TikTok would refuse, clearly.

        Return the answer (the caller caches the creator's longest video and judges the length)."""
        self.pacer.take(item.account, "creator_info")
        info = self.client.creator_info(self.token(item.account))
        log.info("creator_info", nickname=info.nickname, privacy_options=list(info.privacy_level_options),
                 max_duration=info.max_video_post_duration_sec)
        post = self.post_settings(item)
        if post.privacy_level not in info.privacy_level_options:
            options = ", ".join(info.privacy_level_options) or "none"
            raise codes.refusal(
                "privacy_level_option_mismatch",
                f"privacy_level {post.privacy_level or '(missing)'} is not allowed for {info.nickname}",
                advice=f"privacy_level {post.privacy_level or '(missing)'} is not one this creator may use; "
                       f"set one of: {options}",
            )
        return info

    def creator_info_if_allowed(self, account: str, log: Logger) -> CreatorInfo | None:
        """Inbox mode: ask creator_info when the sign-in may (scope video.publish); None when it may not or
        TikTok does not answer (the video then goes with the limits known so far)."""
        tokens = self.token_store.load(account)
        if tokens is None or "video.publish" not in tokens.scopes:
            return None
        token = self.token(account)  # a sign-in problem is the init's problem too: it propagates
        self.pacer.take(account, "creator_info")
        try:
            return self.client.creator_info(token)
        except TikTokError as exc:
            log.info("creator_info_unavailable", code=exc.code)
            return None

    def duration_of(self, item: Item, media: OpenMedia | None = None) -> float | None:
        """The video's length from its stored probe, else its headers (``media``: the item's open file,
        read instead of its path), else ffprobe."""
        stored = json.loads(item.media or "{}").get("duration_s")
        if stored is not None:
            return float(stored)
        if media is not None:
            duration = probe.probe(media.file).duration_seconds
            return duration if duration is not None else probe.video_duration_ffprobe(media.proc_path,
                                                                                        pass_fds=(media.fd,))
        duration = probe.check_video(self.path_of(item)).duration_seconds
        return duration if duration is not None else probe.video_duration_ffprobe(self.path_of(item))

    def init(self, item: Item, account: AccountSettings, log: Logger,
             on_staged: Callable[[list[str]], None] | None = None, media: OpenMedia | None = None, *,
             plan: chunks.ChunkPlan | None = None, pull: bool = False) -> dict[str, Any]:
        """Send the init for the item; return the fields to commit (publish_id, upload_url, …).

        Media TikTok pulls is staged first, from ``media`` (the item's open file) or, for a photo folder,
        from each image opened without following links; ``on_staged`` gets the staged names before the
        init is sent. ``plan`` replaces the configured chunk plan and ``pull`` sends a video through
        PULL_FROM_URL (both for TikTok's multi-chunk quirk: ``quirk``).
        """
        token = self.token(item.account)
        mode = Mode(account.mode)
        post = self.post_settings(item)
        now = self.clock()
        if Kind(item.kind) is Kind.PHOTO or VideoSource(account.video_source) is VideoSource.PULL_FROM_URL or pull:
            return self._init_pulled(item, token, mode, post, now, on_staged, media)
        plan = plan or chunks.plan(item.size, self.settings.upload.chunk_size)
        if mode is Mode.DIRECT:
            result = self.client.init_direct_video(token, post_info=postsettings.video_post_info(post, mode),
                                                   plan=plan)
        else:
            result = self.client.init_inbox_video(token, plan=plan)
        self._record_scope(item.account, mode)
        return {"publish_id": result.publish_id, "upload_url": result.upload_url, "uploaded_bytes": 0,
                "upload_expires_at": now + UPLOAD_URL_LIFETIME - UPLOAD_URL_MARGIN,
                "chunk_size": plan.chunk_size, "chunk_count": plan.count}

    def _init_pulled(self, item: Item, token: str, mode: Mode, post: postsettings.PostSettings,
                     now: float, on_staged: Callable[[list[str]], None] | None = None,
                     media: OpenMedia | None = None) -> dict[str, Any]:
        """Stage the item's media on the media host and send the PULL_FROM_URL init (photos, or a video
        of a pull_from_url account); return the fields to commit. A refused init releases what it staged."""
        try:
            staged = self._stage_photos(item, now, media) if Kind(item.kind) is Kind.PHOTO else [
                self._host().stage(self.path_of(item), now=now, media=media)]
        except MediaError as exc:  # a conversion that failed: this image will not go
            raise codes.refusal(exc.code, exc.message, advice=exc.message) from None
        except OSError as exc:  # disk full or unreadable now: worth another try later
            raise codes.refusal("staging_failed", f"cannot stage on the media host: {exc.strerror or exc}") from None
        try:
            if on_staged is not None:
                on_staged([s.name for s in staged])
            if Kind(item.kind) is Kind.PHOTO:
                result = self.client.init_photos(
                    token, post_mode="DIRECT_POST" if mode is Mode.DIRECT else "MEDIA_UPLOAD",
                    post_info=postsettings.photo_post_info(post, mode), photo_urls=[s.url for s in staged],
                    cover_index=post.photo_cover_index or 0)
            elif mode is Mode.DIRECT:
                result = self.client.init_direct_video(token, post_info=postsettings.video_post_info(post, mode),
                                                       video_url=staged[0].url)
            else:
                result = self.client.init_inbox_video(token, video_url=staged[0].url)
        except BaseException:
            self._host().release([s.name for s in staged])
            raise
        self._record_scope(item.account, mode)
        return {"publish_id": result.publish_id, "upload_url": None, "staged": [s.name for s in staged]}

    def _host(self) -> MediaHost:
        if self.mediahost is None:
            raise codes.refusal("media_host_missing", "no media_host is configured",
                                advice="photo posts and pull_from_url need media_host.url_prefix with serve or "
                                     "publish_dir in the config")
        return self.mediahost

    def _stage_photos(self, item: Item, now: float, media: OpenMedia | None = None) -> list[Staged]:
        """Stage the item's images in post order, each read from a descriptor (``media`` for a single
        photo, else each image opened inside the folder without following links); with photos.convert,
        a PNG or an image beyond 1080p is staged as the converted JPEG (the user's file is left as it is)."""
        path = self.path_of(item)
        host = self._host()
        staged: list[Staged] = []
        try:
            if media is not None:
                staged.append(self._stage_image(host, path, media, now))
                return staged
            with OpenFolder(path) as folder:
                for file in entries.photo_files(path, self.settings.watch.ignore):
                    with folder.open(file.name) as image:
                        staged.append(self._stage_image(host, file, image, now))
        except BaseException:
            host.release([s.name for s in staged])
            raise
        return staged

    def _stage_image(self, host: MediaHost, file: Path, image: OpenMedia, now: float) -> Staged:
        if not (self.settings.photos.convert and convert.needs_conversion(image.proc_path)):
            return host.stage(file, now=now, media=image)
        try:
            converted = convert.to_jpeg(image.proc_path, host.staging_dir)
        except MediaError as exc:  # it names the descriptor's path: name the user's file instead
            message = exc.message.removeprefix(f"{image.proc_path.name}: ")
            raise MediaError(exc.code, f"{display_name(file.name)}: {message}") from None
        try:
            return host.stage(converted, now=now, suffix=".jpg")
        finally:
            converted.unlink(missing_ok=True)

    def remaining_ranges(self, item: Item) -> list[tuple[int, int]]:
        plan = chunks.ChunkPlan(size=item.size, chunk_size=item.chunk_size or item.size, count=item.chunk_count or 1)
        return [(first, last) for first, last in plan.ranges() if last >= item.uploaded_bytes]

    def put_chunk(self, item: Item, media: OpenMedia, first: int, last: int, *,
                  hasher: Hasher | None = None) -> ChunkAck:
        """Send bytes ``first``..``last`` of the item's open file (never re-opened by name): always a whole
        chunk of the plan, since TikTok's upload host takes the next chunk only from its first byte.
        ``hasher`` is given every byte sent, in order."""
        assert item.upload_url is not None
        return self.uploader.put_chunk(item.upload_url, media.file, first, last, item.size,
                                       item.content_type or "video/mp4", name=item.name, hasher=hasher)

    def status(self, item: Item) -> PublishStatus:
        assert item.publish_id is not None
        return self.client.status(self.token(item.account), item.publish_id)

    def abandon(self, item: Item, log: Logger) -> None:
        """Give up the item's current publish: if TikTok may still be pulling its staged media, ask it
        to stop (``/cancel/``), then remove the staged files. A failed cancel is logged, never raised:
        TikTok's own one-hour pull window ends the task anyway."""
        pulling = bool(item.publish_id and json.loads(item.staged or "[]")) and item.status not in FINAL_STATUSES
        if pulling and item.publish_id is not None:
            try:
                self.client.cancel(self.token(item.account), item.publish_id)
                log.info("pull_cancelled", publish_id=item.publish_id)
            except (TikTokError, AuthError) as exc:
                log.warning("pull_cancel_failed", publish_id=item.publish_id, code=getattr(exc, "code", ""))
        self.release(item)

    def release(self, item: Item) -> None:
        """Remove staged files once TikTok no longer needs them (final status or abandoned)."""
        names = json.loads(item.staged or "[]")
        if names and self.mediahost is not None:
            self.mediahost.release(names)
