"""The Content Posting API's JSON endpoints, one call each, every failure a typed TikTokError.

Single-shot on purpose: no call is retried here, because whether and when to try again depends
on the account's limits and the item's budget, which only the scheduler knows. The one place
that turns an answer into data or an error is ``_call``. Tokens travel only in the Authorization
header; they never reach a message, a log line or an exception.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from watchfolder import __version__
from watchfolder.core.errors import TikTokError
from watchfolder.tiktok import codes, transport, uploadurl
from watchfolder.tiktok.chunks import ChunkPlan

log = structlog.get_logger(__name__)

CREATOR_INFO = "/v2/post/publish/creator_info/query/"
DIRECT_VIDEO_INIT = "/v2/post/publish/video/init/"
INBOX_VIDEO_INIT = "/v2/post/publish/inbox/video/init/"
CONTENT_INIT = "/v2/post/publish/content/init/"
STATUS_FETCH = "/v2/post/publish/status/fetch/"
CANCEL = "/v2/post/publish/cancel/"


@dataclass(frozen=True)
class CreatorInfo:
    """What TikTok says this creator may post right now (creator_info/query)."""

    nickname: str
    username: str
    privacy_level_options: tuple[str, ...]
    comment_disabled: bool
    duet_disabled: bool
    stitch_disabled: bool
    max_video_post_duration_sec: int


@dataclass(frozen=True)
class InitResult:
    """An accepted init: the publish_id to poll, the upload_url for FILE_UPLOAD (None otherwise)."""

    publish_id: str
    upload_url: str | None
    log_id: str


@dataclass(frozen=True)
class PublishStatus:
    """One status/fetch answer. ``post_ids`` are strings: TikTok's int64 ids exceed a double."""

    status: str
    fail_reason: str | None
    uploaded_bytes: int | None
    downloaded_bytes: int | None
    post_ids: tuple[str, ...]


def _error(code: str, message: str, *, http_status: int | None, log_id: str = "") -> TikTokError:
    """Build the one exception type every failure becomes, with its action from the policy table."""
    policy = codes.for_error(code, http_status)
    return TikTokError(code, message, action=policy.action, log_id=log_id, http_status=http_status,
                       advice=policy.advice)


class TikTokClient:
    """A session against one API base URL (TikTok's, or the emulator's in tests)."""

    def __init__(self, base_url: str, *, timeout: float = 60.0,
                 user_agent: str = f"watchfolder/{__version__}",
                 tiktok_domains: tuple[str, ...] = uploadurl.TIKTOK_DOMAINS) -> None:
        self.base_url = base_url.rstrip("/")
        self.tiktok_domains = tiktok_domains  # an API on these must hand out https upload URLs on them
        self.timeout = timeout
        self._host = urlsplit(self.base_url).netloc
        self._session = transport.session()
        self._session.headers["User-Agent"] = user_agent

    def creator_info(self, token: str) -> CreatorInfo:
        """Given an access token with video.publish, return what the creator may post now; raise
        TikTokError (e.g. ``spam_risk_too_many_posts``, which TikTok sends here with HTTP 200)."""
        data, _ = self._call(CREATOR_INFO, token, {})
        try:
            return CreatorInfo(
                nickname=str(data.get("creator_nickname", "")),
                username=str(data.get("creator_username", "")),
                privacy_level_options=tuple(str(option) for option in data["privacy_level_options"]),
                comment_disabled=bool(data.get("comment_disabled", False)),
                duet_disabled=bool(data.get("duet_disabled", False)),
                stitch_disabled=bool(data.get("stitch_disabled", False)),
                max_video_post_duration_sec=int(data["max_video_post_duration_sec"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _error("bad_response", f"creator_info answer lacks {exc}", http_status=200) from None

    def init_inbox_video(self, token: str, *, plan: ChunkPlan | None = None,
                         video_url: str | None = None) -> InitResult:
        """Given exactly one of a chunk plan (FILE_UPLOAD) or a verified video URL (PULL_FROM_URL),
        start an inbox (draft) upload and return its publish_id (and upload_url for a file);
        raise TikTokError if TikTok refuses, ValueError if both or neither source is given."""
        body = {"source_info": _video_source(plan, video_url)}
        return self._init(INBOX_VIDEO_INIT, token, body, expect_upload_url=plan is not None)

    def init_direct_video(self, token: str, *, post_info: Mapping[str, Any], plan: ChunkPlan | None = None,
                          video_url: str | None = None) -> InitResult:
        """Like ``init_inbox_video`` but a Direct Post with ``post_info`` (privacy_level, title, …)
        sent as given; raise TikTokError if TikTok refuses."""
        body = {"post_info": dict(post_info), "source_info": _video_source(plan, video_url)}
        return self._init(DIRECT_VIDEO_INIT, token, body, expect_upload_url=plan is not None)

    def init_photos(self, token: str, *, post_mode: str, post_info: Mapping[str, Any],
                    photo_urls: Sequence[str], cover_index: int) -> InitResult:
        """Given ``post_mode`` MEDIA_UPLOAD (inbox) or DIRECT_POST and the verified URLs of the
        photos in order, start a photo post that TikTok pulls; return its publish_id; raise
        TikTokError if TikTok refuses, ValueError for another post_mode or no photos."""
        if post_mode not in ("MEDIA_UPLOAD", "DIRECT_POST"):
            raise ValueError(f"post_mode must be MEDIA_UPLOAD or DIRECT_POST, not {post_mode!r}")
        if not photo_urls:
            raise ValueError("a photo post needs at least one photo URL")
        body = {
            "media_type": "PHOTO",
            "post_mode": post_mode,
            "post_info": dict(post_info),
            "source_info": {"source": "PULL_FROM_URL", "photo_images": list(photo_urls),
                            "photo_cover_index": cover_index},
        }
        return self._init(CONTENT_INIT, token, body, expect_upload_url=False)

    def status(self, token: str, publish_id: str) -> PublishStatus:
        """Given a publish_id, return TikTok's view of it (a FAILED status is returned, not raised:
        its fail_reason goes through ``codes.for_fail_reason``); raise TikTokError if the call fails."""
        data, _ = self._call(STATUS_FETCH, token, {"publish_id": publish_id})
        status = data.get("status")
        if not isinstance(status, str) or not status:
            raise _error("bad_response", "status answer has no status", http_status=200)
        return PublishStatus(
            status=status,
            fail_reason=str(data["fail_reason"]) if data.get("fail_reason") else None,
            uploaded_bytes=_optional_int(data.get("uploaded_bytes")),
            downloaded_bytes=_optional_int(data.get("downloaded_bytes")),
            # Python's json keeps integers exact, so str() of the parsed id is the id TikTok sent.
            post_ids=tuple(str(post_id) for post_id in data.get("publicaly_available_post_id") or ()),
        )

    def cancel(self, token: str, publish_id: str) -> None:
        """Given a PULL_FROM_URL publish_id, ask TikTok to stop downloading it; raise TikTokError if
        it refuses (``publish_not_cancellable`` means it had already finished: harmless here)."""
        self._call(CANCEL, token, {"publish_id": publish_id})

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def _init(self, path: str, token: str, body: dict[str, Any], *, expect_upload_url: bool) -> InitResult:
        data, log_id = self._call(path, token, body)
        publish_id = data.get("publish_id")
        upload_url = data.get("upload_url") or None
        if not isinstance(publish_id, str) or not publish_id:
            raise _error("bad_response", "init answer has no publish_id", http_status=200, log_id=log_id)
        if expect_upload_url and not isinstance(upload_url, str):
            raise _error("bad_response", "FILE_UPLOAD init answer has no upload_url", http_status=200,
                         log_id=log_id)
        if isinstance(upload_url, str):
            uploadurl.check(self.base_url, upload_url, domains=self.tiktok_domains)
        return InitResult(publish_id=publish_id, upload_url=upload_url, log_id=log_id)

    def _call(self, path: str, token: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """POST ``body`` to ``path``; return the envelope's ``data`` (``{}`` when absent) and log_id,
        or raise TikTokError for anything but ``error.code == "ok"`` with a 2xx status."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"}
        started = time.monotonic()
        try:
            response = self._session.post(self.base_url + path, data=json.dumps(body).encode("utf-8"),
                                          headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            # str(exc) would be safe (no token in these URLs) but long; the class name says enough.
            log.info("tiktok_call_failed", endpoint=path, code="network_error", reason=type(exc).__name__)
            raise _error("network_error", f"{self._host}{path}: {type(exc).__name__}",
                         http_status=None) from None
        status = response.status_code
        envelope = _envelope(response.content)
        if envelope is None:
            code = _code_for_status(status)
            log.info("tiktok_call_failed", endpoint=path, http_status=status, code=code)
            raise _error(code, f"{self._host}{path}: HTTP {status} without TikTok's JSON answer",
                         http_status=status)
        error = envelope.get("error") or {}
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        log_id = str(error.get("log_id") or error.get("logid") or "")
        duration_ms = round((time.monotonic() - started) * 1000)
        if code == "ok" and status < 300:
            log.debug("tiktok_call", endpoint=path, http_status=status, log_id=log_id, duration_ms=duration_ms)
            data = envelope.get("data")
            return (data if isinstance(data, dict) else {}), log_id
        if not code or code == "ok":
            # A failure status with a blank (or contradictory) code: the status decides.
            code = _code_for_status(status)
        log.info("tiktok_call_failed", endpoint=path, http_status=status, code=code, log_id=log_id,
                 duration_ms=duration_ms)
        raise _error(code, message, http_status=status, log_id=log_id)


def _code_for_status(status: int) -> str:
    """Name a failure TikTok's envelope did not name: a server failure, a throttle, or an answer we
    cannot read (a proxy's page, a contradictory "ok" with an error status)."""
    if status >= 500:
        return "internal_error"
    if status == 429:
        return "rate_limit_exceeded"
    return "bad_response"


def _envelope(content: bytes) -> dict[str, Any] | None:
    """Return the parsed JSON object of a response body, or None if it is not one."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _video_source(plan: ChunkPlan | None, video_url: str | None) -> dict[str, Any]:
    """Build ``source_info`` for a video init from exactly one of a chunk plan or a URL."""
    if (plan is None) == (video_url is None):
        raise ValueError("give exactly one of plan (FILE_UPLOAD) or video_url (PULL_FROM_URL)")
    if plan is not None:
        return {"source": "FILE_UPLOAD", "video_size": plan.size, "chunk_size": plan.chunk_size,
                "total_chunk_count": plan.count}
    return {"source": "PULL_FROM_URL", "video_url": video_url}


def _optional_int(value: object) -> int | None:
    """Return ``value`` as an int, None when it is absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None
