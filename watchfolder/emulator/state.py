"""What the emulator knows: users and tokens, publish tasks, rate windows, planned faults and records, under
one lock, with the operations the HTTP handlers and the Python test API share.

The handlers (``api_publish``, ``api_oauth``, ``upload``, ``control``), the PULL_FROM_URL downloader and
the server are written against this object only; ``Emulator`` owns one and runs the server around it.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Sequence
from typing import Any

from watchfolder.emulator import media
from watchfolder.emulator.accounts import Accounts, User
from watchfolder.emulator.clock import Clock
from watchfolder.emulator.config import EmulatorConfig
from watchfolder.emulator.faults import Faults
from watchfolder.emulator.limits import RateLimiter
from watchfolder.emulator.publishes import Publish, new_publish_id
from watchfolder.emulator.records import Records

DEFAULT_SCOPES = ("user.info.basic", "video.upload", "video.publish")


class EmulatorState:
    """The emulator's state. ``lock`` guards ``accounts``, ``publishes`` and ``uploads`` and every task's
    fields; methods that say so take it themselves, the others expect the caller to hold it."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.accounts = Accounts(config)
        self.publishes: dict[str, Publish] = {}
        self.uploads: dict[str, Publish] = {}  # by upload_id
        self.limiter = RateLimiter(config.rate_limits())
        self.faults = Faults()
        self.records = Records(lambda: list(self.publishes.values()), clock.now, config, self.lock)
        self.authorize_user: str | None = None  # the user the authorize page signs in (None: the first)
        self.base_url: str | None = None  # set while the server runs
        self.temp_dir = ""  # received bytes live here while the server runs

    # Users and tokens.

    def add_user(self, name: str, scopes: Sequence[str] = DEFAULT_SCOPES, private_account: bool = False,
                 privacy_level_options: Sequence[str] | None = None, max_video_post_duration_sec: int = 600,
                 access_ttl: int | None = None, refresh_ttl: int | None = None) -> User:
        """Create a creator with a fresh token pair and return it. Raise ValueError for an unknown scope or
        a taken name."""
        with self.lock:
            return self.accounts.add_user(
                name, scopes, self.clock.now(), private_account=private_account,
                privacy_level_options=privacy_level_options,
                max_video_post_duration_sec=max_video_post_duration_sec, access_ttl=access_ttl,
                refresh_ttl=refresh_ttl)

    def user(self, name_or_open_id: str) -> User:
        """Return a user by name or open_id; raise KeyError if there is none."""
        with self.lock:
            user = self.accounts.users.get(name_or_open_id) or self.accounts.by_name(name_or_open_id)
        if user is None:
            raise KeyError(name_or_open_id)
        return user

    def expire_access_token(self, token_or_open_id: str) -> int:
        """Make an access token (or all of one open_id's) expired now; return how many."""
        with self.lock:
            return self.accounts.expire_access(token_or_open_id, self.clock.now())

    def revoke(self, open_id: str) -> None:
        """End every token of ``open_id``; its unfinished publish tasks end FAILED with ``auth_removed``.
        Raise KeyError for an unknown open_id."""
        with self.lock:
            self.user(open_id)
            now = self.clock.now()
            self.accounts.revoke_user(open_id)
            for publish in self.publishes.values():
                if publish.open_id == open_id and not publish.is_final(now, self.config):
                    publish.fail_now("auth_removed", now)

    def token_owner(self, authorization: str | None) -> str | None:
        """Return the open_id an ``Authorization: Bearer`` header's token was issued to (even if it has
        expired), or None; used to say whose request a record is."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        with self.lock:
            access = self.accounts.access.get(authorization[7:].strip())
        return access.open_id if access else None

    # Publish tasks.

    def new_publish(self, **fields: Any) -> Publish:
        """Register a new publish task built from ``fields`` (see Publish) and return it.

        A FILE_UPLOAD task gets an upload id, token, expiry and a temporary file; a planned
        ``fail_next_publish`` is attached here. A PULL_FROM_URL task's download is the caller's to start.
        """
        now = self.clock.now()
        publish_id = new_publish_id(fields["kind"], fields["mode"], fields["source"])
        publish = Publish(publish_id=publish_id, created_at=now, **fields)
        publish.planned_fail_reason = self.faults.take_publish()
        if publish.source == "FILE_UPLOAD":
            publish.upload_id = secrets.token_hex(12)
            publish.upload_token = secrets.token_urlsafe(24)
            publish.upload_expires_at = now + self.config.upload_url_ttl
            publish.temp_path = os.path.join(self.temp_dir, publish.upload_id)
        with self.lock:
            self.publishes[publish_id] = publish
            if publish.upload_id:
                self.uploads[publish.upload_id] = publish
        return publish

    def expire_upload_url(self, publish_id: str) -> None:
        """Make the task's ``upload_url`` expired now. Raise KeyError if unknown."""
        with self.lock:
            publish = self.publishes[publish_id]
            publish.upload_expires_at = self.clock.now()

    def finish_transfer(self, publish: Publish, problem: str | None) -> None:
        """Mark every byte of a task received now; ``problem`` is a fail_reason found by a content check.

        A failure planned by ``fail_next_publish`` wins over a content problem. The caller holds the lock.
        """
        publish.transfer_done_at = self.clock.now()
        publish.planned_fail_reason = publish.planned_fail_reason or problem

    def video_problem(self, publish: Publish, path: str | None, size: int) -> str | None:
        """Return the fail_reason TikTok's checks would give a received video, or None if it passes.

        The container is judged by magic bytes; an MP4/MOV longer than the creator's
        ``max_video_post_duration_sec`` fails ``duration_check_failed``.
        """
        if not self.config.check_content:
            return None
        container = media.video_container(publish.head)
        if container is None:
            return "file_format_check_failed"
        if container in ("mp4", "mov") and path is not None:
            with open(path, "rb") as stream:
                duration = media.mp4_duration_seconds(stream, size)
            user = self.accounts.users.get(publish.open_id)
            if duration is not None and user is not None and duration > user.max_video_post_duration_sec:
                return "duration_check_failed"
        return None

    def drop_file(self, publish: Publish) -> None:
        """Delete a finished task's received bytes unless ``keep_uploads`` asks to keep them."""
        if publish.temp_path and not self.config.keep_uploads:
            try:
                os.unlink(publish.temp_path)
            except FileNotFoundError:
                pass

    def upload_file(self, publish_id: str) -> str | None:
        """Return the path of the bytes received for a task (with ``keep_uploads``), or None if gone."""
        with self.lock:
            path = self.publishes[publish_id].temp_path
        return path if path and os.path.exists(path) else None

    def cancel_downloads(self) -> None:
        """Tell every PULL_FROM_URL download to stop (the emulator is stopping)."""
        with self.lock:
            for publish in self.publishes.values():
                publish.cancel_event.set()
