"""What happened, for tests to assert on: every request, every publish, every token refresh.

Request and refresh records are appended as they happen. Publish records are snapshots taken when read,
so their ``status`` is what status/fetch would say at the emulator's current time.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watchfolder.emulator.config import EmulatorConfig
from watchfolder.emulator.publishes import SUCCESS_STATUSES, Publish, status_at


@dataclass(frozen=True)
class RequestRecord:
    """One request: which endpoint, whose token (open_id, or None), the HTTP status and error code.

    ``error_code`` is None on success; for the chunk PUT it is a short reason of the emulator's own
    (``range_not_satisfiable``, ``upload_url_expired``, …) since TikTok's upload host sends no envelope.
    ``http_status`` is 0 when the connection was dropped on purpose. ``content_range`` is the chunk
    PUT's ``Content-Range`` header as sent (None for other endpoints), so a test can tell which bytes
    each PUT carried, refused ones included.
    """

    endpoint: str
    open_id: str | None
    http_status: int
    error_code: str | None
    at: float
    publish_id: str | None = None
    content_range: str | None = None


@dataclass(frozen=True)
class PublishRecord:
    """One publish task as seen now: what was declared, what bytes arrived, and where it stands."""

    publish_id: str
    open_id: str
    kind: str
    mode: str
    source: str
    declared_size: int | None
    chunk_size: int | None
    total_chunk_count: int | None
    sha256: str | None
    received_bytes: int
    chunk_ranges: tuple[tuple[int, int], ...]
    post_info: dict[str, Any]
    photo_urls: tuple[str, ...]
    photo_sha256s: tuple[str | None, ...]
    status: str
    fail_reason: str | None
    created_at: float
    video_url: str | None = None
    photo_cover_index: int | None = None
    downloaded_bytes: int = 0
    fetched_urls: tuple[str, ...] = ()  # the URLs it finished downloading, in the order it did


@dataclass(frozen=True)
class RefreshRecord:
    """One ``grant_type=refresh_token`` call: whose, a short hash of the token sent, and the outcome."""

    open_id: str | None
    old_refresh_token_hash: str
    rotated: bool
    at: float
    ok: bool
    error: str | None = None


class Records:
    """The emulator's log for assertions; safe to read from any thread."""

    def __init__(self, publishes: Callable[[], list[Publish]], now: Callable[[], float],
                 config: EmulatorConfig, lock: threading.RLock) -> None:
        self._publishes = publishes
        self._now = now
        self._config = config
        self._lock = lock
        keep = config.max_request_records or None
        self._requests: deque[RequestRecord] = deque(maxlen=keep)
        self._refreshes: deque[RefreshRecord] = deque(maxlen=keep)

    def add_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def add_refresh(self, record: RefreshRecord) -> None:
        with self._lock:
            self._refreshes.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far (the newest ``max_request_records``) except the control endpoint's,
        oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def refreshes(self) -> list[RefreshRecord]:
        with self._lock:
            return list(self._refreshes)

    @property
    def publishes(self) -> list[PublishRecord]:
        """Every publish task, oldest first, with its status at the emulator's current time."""
        with self._lock:
            now = self._now()
            return [self._snapshot(publish, now) for publish in self._publishes()]

    def publish(self, publish_id: str) -> PublishRecord:
        """Return the record of one task; raise KeyError if the emulator never issued that id."""
        for record in self.publishes:
            if record.publish_id == publish_id:
                return record
        raise KeyError(publish_id)

    def completed(self, sha256: str) -> int:
        """Return how many tasks with these bytes (a video, or any image of a photo post) reached
        SEND_TO_USER_INBOX or PUBLISH_COMPLETE."""
        return sum(1 for record in self.publishes
                   if record.status in SUCCESS_STATUSES
                   and (record.sha256 == sha256 or sha256 in record.photo_sha256s))

    def as_json(self) -> dict[str, Any]:
        """Return all records as plain JSON-ready data (the control endpoint's ``GET /_emulator/records``)."""
        return {
            "requests": [dataclasses.asdict(r) for r in self.requests],
            "publishes": [dataclasses.asdict(r) for r in self.publishes],
            "refreshes": [dataclasses.asdict(r) for r in self.refreshes],
        }

    def _snapshot(self, publish: Publish, now: float) -> PublishRecord:
        status, reason = status_at(publish, now, self._config)
        return PublishRecord(
            publish_id=publish.publish_id, open_id=publish.open_id, kind=publish.kind, mode=publish.mode,
            source=publish.source, declared_size=publish.declared_size, chunk_size=publish.chunk_size,
            total_chunk_count=publish.total_chunk_count, sha256=publish.sha256,
            received_bytes=publish.received, chunk_ranges=tuple(publish.chunk_ranges),
            post_info=dict(publish.post_info), photo_urls=tuple(publish.photo_urls),
            photo_sha256s=tuple(publish.photo_sha256s), status=status, fail_reason=reason,
            created_at=publish.created_at, video_url=publish.video_url,
            photo_cover_index=publish.photo_cover_index, downloaded_bytes=publish.downloaded,
            fetched_urls=tuple(publish.fetched_urls),
        )
