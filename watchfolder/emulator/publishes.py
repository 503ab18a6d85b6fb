"""One publish task (a ``publish_id``) and the status it shows at a given time (reference §3).

Status is computed from timestamps on the emulator's clock rather than moved by timers, so a test that
advances the clock sees the next status at once and nothing runs in the background for it.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from watchfolder.emulator.config import EmulatorConfig

PROCESSING_UPLOAD = "PROCESSING_UPLOAD"
PROCESSING_DOWNLOAD = "PROCESSING_DOWNLOAD"
SEND_TO_USER_INBOX = "SEND_TO_USER_INBOX"
PUBLISH_COMPLETE = "PUBLISH_COMPLETE"
FAILED = "FAILED"
SUCCESS_STATUSES = frozenset({SEND_TO_USER_INBOX, PUBLISH_COMPLETE})

_serial = itertools.count(1)


@dataclass
class Publish:
    """Everything the emulator knows about one publish task; guarded by the emulator's lock."""

    publish_id: str
    open_id: str
    kind: str  # "video" | "photo"
    mode: str  # "inbox" | "direct"
    source: str  # "FILE_UPLOAD" | "PULL_FROM_URL"
    created_at: float
    post_info: dict[str, Any]
    privacy_level: str | None = None
    declared_size: int | None = None
    chunk_size: int | None = None
    total_chunk_count: int | None = None
    upload_id: str | None = None
    upload_token: str | None = None
    upload_expires_at: float | None = None
    video_url: str | None = None
    photo_urls: list[str] = field(default_factory=list)
    photo_cover_index: int | None = None
    # Transfer progress.
    received: int = 0
    chunk_ranges: list[tuple[int, int]] = field(default_factory=list)
    in_flight: bool = False
    hasher: Any = field(default_factory=hashlib.sha256)
    head: bytes = b""  # the first bytes of the media, for the magic-bytes check
    temp_path: str | None = None
    sha256: str | None = None
    photo_sha256s: list[str | None] = field(default_factory=list)
    fetched_urls: list[str] = field(default_factory=list)  # PULL_FROM_URL: each URL once fully read, in order
    downloaded: int = 0
    transfer_done_at: float | None = None
    # Outcome.
    planned_fail_reason: str | None = None  # decided at transfer end (content check) or by a fault
    failed_at: float | None = None  # failures that happen at a moment: cancel, auth_removed, pull error
    fail_reason: str | None = None
    post_id: int = field(default_factory=lambda: 7_300_000_000_000_000_000 + secrets.randbelow(10**17))
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def is_final(self, now: float, config: EmulatorConfig) -> bool:
        """Say whether the task has reached a status it will not leave by itself (FAILED or complete)."""
        status, _ = status_at(self, now, config)
        return status in (FAILED, PUBLISH_COMPLETE) or (
            status == SEND_TO_USER_INBOX and config.inbox_user_posts_after is None)

    def fail_now(self, reason: str, now: float) -> None:
        """Make the task FAILED with ``reason`` from ``now`` on, and stop its download if one runs."""
        self.failed_at = now
        self.fail_reason = reason
        self.cancel_event.set()


def new_publish_id(kind: str, mode: str, source: str) -> str:
    """Return an id shaped like TikTok's examples (``v_inbox_file~v2.…``, ``p_pub_url~v2.…``)."""
    prefix = "p" if kind == "photo" else "v"
    where = "inbox" if mode == "inbox" else "pub"
    how = "file" if source == "FILE_UPLOAD" else "url"
    version = "v2-1" if (kind, mode, source) == ("video", "direct", "FILE_UPLOAD") else "v2"
    number = 7_000_000_000_000_000_000 + next(_serial) * 1_000_003 + secrets.randbelow(1_000_000)
    return f"{prefix}_{where}_{how}~{version}.{number}"


def status_at(publish: Publish, now: float, config: EmulatorConfig) -> tuple[str, str | None]:
    """Given a task and a time, return (status, fail_reason) as status/fetch reports them then."""
    if publish.failed_at is not None and now >= publish.failed_at:
        return FAILED, publish.fail_reason
    processing = PROCESSING_UPLOAD if publish.source == "FILE_UPLOAD" else PROCESSING_DOWNLOAD
    if publish.transfer_done_at is None:
        expired = publish.upload_expires_at is not None and now >= publish.upload_expires_at
        if expired and config.expired_upload_fail_reason:
            return FAILED, config.expired_upload_fail_reason
        return processing, None
    ready_at = publish.transfer_done_at + config.processing_seconds
    if now < ready_at:
        return processing, None
    if publish.planned_fail_reason:
        return FAILED, publish.planned_fail_reason
    if publish.mode == "direct":
        return PUBLISH_COMPLETE, None
    posts_after = config.inbox_user_posts_after
    if posts_after is not None and now >= ready_at + posts_after:
        return PUBLISH_COMPLETE, None
    return SEND_TO_USER_INBOX, None


def public_post_ids(publish: Publish, now: float, config: EmulatorConfig) -> list[int]:
    """Return ``publicaly_available_post_id``: the post id once a public direct post passed moderation."""
    status, _ = status_at(publish, now, config)
    if status != PUBLISH_COMPLETE or publish.mode != "direct" or publish.privacy_level != "PUBLIC_TO_EVERYONE":
        return []
    assert publish.transfer_done_at is not None
    moderated_at = publish.transfer_done_at + config.processing_seconds + config.moderation_seconds
    return [publish.post_id] if now >= moderated_at else []


def status_data(publish: Publish, now: float, config: EmulatorConfig) -> dict[str, Any]:
    """Return the ``data`` object of status/fetch for this task at ``now``."""
    status, reason = status_at(publish, now, config)
    data: dict[str, Any] = {"status": status}
    if status == FAILED:
        data["fail_reason"] = reason or "internal"
    data["publicaly_available_post_id"] = public_post_ids(publish, now, config)
    if publish.source == "FILE_UPLOAD":
        data["uploaded_bytes"] = publish.received
    else:
        data["downloaded_bytes"] = publish.downloaded
    return data
