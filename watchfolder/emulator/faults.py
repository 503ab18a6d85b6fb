"""Fault injection: make the next calls of an endpoint fail, or the next publishes end FAILED.

Used from Python (``emu.faults.fail_next(...)``) and through ``POST /_emulator/faults`` by other processes.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from watchfolder.emulator.envelope import CODES_OF_ENDPOINT, OAUTH_ERRORS

ENDPOINTS = (
    "creator_info", "video_init", "inbox_init", "content_init", "status", "cancel", "upload",
    "token", "revoke", "user_info", "authorize",
)
KINDS = ("5xx", "429", "drop", "drop_after", "slow", "error")
FAIL_REASONS = frozenset({
    "file_format_check_failed", "duration_check_failed", "frame_rate_check_failed",
    "picture_size_check_failed", "internal", "video_pull_failed", "photo_pull_failed", "publish_cancelled",
    "auth_removed", "spam_risk_too_many_posts", "spam_risk_user_banned_from_posting", "spam_risk_text",
    "spam_risk",
})


@dataclass(frozen=True)
class Fault:
    """One planned failure of one call.

    kind "5xx": answer ``status`` (500 unless given); "429": rate_limit_exceeded; "drop": close the
    connection without an answer; "drop_after": carry the call out, then close the connection without
    its answer (the client cannot know it succeeded); "slow": sleep ``delay`` real seconds, then answer
    normally;
    "error": answer with TikTok error ``error_code`` and the HTTP status documented for it.
    """

    endpoint: str
    kind: str
    error_code: str | None = None
    delay: float = 0.0
    status: int = 500


class Faults:
    """Queues of planned failures, consumed one per call, first planned first used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._publishes: deque[str] = deque()

    def fail_next(self, endpoint: str, n: int = 1, kind: str = "5xx", *, error_code: str | None = None,
                  delay: float = 2.0, status: int = 500) -> None:
        """Make the next ``n`` calls of ``endpoint`` fail as ``kind`` says (see Fault).

        Giving ``error_code`` implies kind "error". Raise ValueError for an unknown endpoint or kind, a
        5xx ``status`` outside 500..599, or an error code that endpoint cannot answer with.
        """
        if endpoint not in self._calls:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}")
        if error_code is not None:
            kind = "error"
            _check_error_code(endpoint, error_code)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        if kind == "error" and error_code is None:
            raise ValueError("kind 'error' needs an error_code")
        if kind == "5xx" and not 500 <= status <= 599:
            raise ValueError(f"a 5xx fault needs a status in 500..599, got {status}")
        if n < 1:
            raise ValueError("n must be at least 1")
        fault = Fault(endpoint, kind, error_code, float(delay), status)
        with self._lock:
            self._calls[endpoint].extend([fault] * n)

    def fail_next_publish(self, fail_reason: str = "internal", n: int = 1) -> None:
        """Make the next ``n`` publish tasks (any kind) end FAILED with ``fail_reason`` once processed.

        Raise ValueError for a fail_reason TikTok does not document.
        """
        if fail_reason not in FAIL_REASONS:
            raise ValueError(f"unknown fail_reason {fail_reason!r}; known: {', '.join(sorted(FAIL_REASONS))}")
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._publishes.extend([fail_reason] * n)

    def take(self, endpoint: str) -> Fault | None:
        """Return and consume the next planned failure of ``endpoint``, or None."""
        with self._lock:
            queue = self._calls.get(endpoint)
            return queue.popleft() if queue else None

    def take_publish(self) -> str | None:
        """Return and consume the fail_reason planned for the next publish, or None."""
        with self._lock:
            return self._publishes.popleft() if self._publishes else None

    def clear(self) -> None:
        """Forget every planned failure."""
        with self._lock:
            for queue in self._calls.values():
                queue.clear()
            self._publishes.clear()

    def pending(self) -> dict[str, int]:
        """Return how many planned failures are left per endpoint (and ``"publish"``), skipping zeros."""
        with self._lock:
            counts = {name: len(queue) for name, queue in self._calls.items() if queue}
            if self._publishes:
                counts["publish"] = len(self._publishes)
            return counts


def _check_error_code(endpoint: str, code: str) -> None:
    if endpoint in ("token", "revoke", "authorize"):
        if code not in OAUTH_ERRORS:
            raise ValueError(f"{endpoint} answers OAuth errors ({', '.join(sorted(OAUTH_ERRORS))}), not {code!r}")
        return
    if endpoint == "upload":
        raise ValueError("the upload PUT has no error codes; use kind '5xx', 'drop' or 'slow', "
                         "or expire_upload_url()")
    if code not in CODES_OF_ENDPOINT[endpoint]:
        raise ValueError(f"{endpoint} does not answer with {code!r}; it can answer with "
                         f"{', '.join(sorted(CODES_OF_ENDPOINT[endpoint]))}")
