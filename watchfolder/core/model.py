"""The nouns every part shares: states, kinds, modes and actions. Standard library only."""

from __future__ import annotations

import dataclasses
import enum


class State(enum.StrEnum):
    """Where an item is in its life. See docs/architecture.md for the diagram."""

    QUEUED = "queued"          # settled and valid, waiting for its turn
    WAITING = "waiting"        # parked until next_attempt_at (rate limit, cap, publish_at, backoff)
    UPLOADING = "uploading"    # moved to processing/, init and chunk PUTs under way
    PROCESSING = "processing"  # all bytes sent (or URL handed over); polling status/fetch
    DONE = "done"              # outcome recorded; file in done/ once `moved` is set
    FAILED = "failed"          # outcome recorded; file in failed/ once `moved` is set
    CANCELLED = "cancelled"    # the user took the file out of inbox/ before it was sent

    @property
    def finished(self) -> bool:
        return self in (State.DONE, State.FAILED, State.CANCELLED)


class Kind(enum.StrEnum):
    VIDEO = "video"
    PHOTO = "photo"


class Mode(enum.StrEnum):
    INBOX = "inbox"    # drafts in the creator's TikTok inbox, scope video.upload
    DIRECT = "direct"  # Direct Post, scope video.publish


class VideoSource(enum.StrEnum):
    FILE_UPLOAD = "file_upload"
    PULL_FROM_URL = "pull_from_url"


class Action(enum.StrEnum):
    """What the daemon does about a refusal from TikTok (one policy table: tiktok/codes.py)."""

    RETRY = "retry"      # transient: back off and try the same step again
    WAIT = "wait"        # a cap: park the account (or the app) until a time, nothing failed
    REFRESH = "refresh"  # access token rejected: refresh once and repeat the call
    REINIT = "reinit"    # the upload task is gone (URL expired, unknown upload): start a new init
    PAUSE = "pause"      # account-wide refusal: pause the account, keep its files in inbox/
    REAUTH = "reauth"    # the grant is gone: pause the account until the user signs in again
    FAIL = "fail"        # permanent for this item: failed/ with TikTok's code and advice


SCOPE_FOR_MODE: dict[Mode, str] = {Mode.INBOX: "video.upload", Mode.DIRECT: "video.publish"}


# Columns of an item row that code may set through Store.apply / Store.update.
ITEM_FIELDS = (
    "account", "name", "kind", "folder", "state", "settings_name", "size", "mtime_ns", "ctime_ns", "ino",
    "sha256", "content_type", "detected_at", "updated_at", "next_attempt_at", "wait_reason", "attempts",
    "publish_id", "upload_url", "upload_expires_at", "uploaded_bytes", "chunk_size", "chunk_count",
    "init_started_at", "init_count", "orphans", "status", "post_ids", "error_code", "error_message",
    "error_log_id", "moved", "result_name", "staged", "publish_at", "detail", "duplicate_of", "source_mode",
    "post_info", "media", "warnings", "retry_streak", "dev", "quick_key",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One piece of media (a video file, an image, or a photo folder) and everything known about its trip."""

    id: int
    account: str
    name: str                      # its name in `folder` (may gain a " (2)" suffix when moved)
    kind: str                      # Kind value
    folder: str                    # inbox | processing | done | failed: where the file is now
    state: State
    settings_name: str | None      # the post settings file that travels with it
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    sha256: str | None
    content_type: str | None
    detected_at: float
    updated_at: float
    next_attempt_at: float | None
    wait_reason: str | None
    attempts: int                  # transient failures so far (the retry budget)
    publish_id: str | None
    upload_url: str | None
    upload_expires_at: float | None
    uploaded_bytes: int            # bytes TikTok acknowledged
    chunk_size: int | None
    chunk_count: int | None
    init_started_at: float | None  # write-ahead: an init was sent at this time (answer maybe lost)
    init_count: int
    orphans: str                   # JSON list of notes on inits whose drafts were abandoned
    status: str | None             # TikTok's last status
    post_ids: str                  # JSON list
    error_code: str | None
    error_message: str | None
    error_log_id: str | None
    moved: int                     # 1 once the file reached done/ or failed/ with its sidecar
    result_name: str | None
    staged: str                    # JSON list of media-host names
    publish_at: float | None
    detail: str | None             # a line for `status` (cannot read, disk full, …)
    duplicate_of: int | None
    source_mode: str | None        # the account mode when the item was taken in
    post_info: str | None          # JSON of the post settings used
    media: str | None = None       # JSON of what the media probe read (a video's codec, size, rate, length)
    warnings: str = "[]"           # JSON list of things worth knowing that did not stop the item
    retry_streak: int = 0          # transient failures in a row since the last progress (the backoff's step)
    dev: int | None = None         # the filesystem the file lives on (st_dev); None: not recorded
    quick_key: str | None = None   # the cheap dedupe key (size + the first and last MiB): daemon/contenthash
