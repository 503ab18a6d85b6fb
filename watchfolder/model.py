"""The nouns every part shares: states, kinds, modes and actions. Standard library only."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """Where an item is in its life. See docs/architecture.md for the diagram."""

    DETECTED = "detected"      # seen in inbox/, not settled yet
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
