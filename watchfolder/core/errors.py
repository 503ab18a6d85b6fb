"""The few exception classes callers act on. Only ``cli`` turns them into messages and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from watchfolder.core.model import Action


class WatchfolderError(Exception):
    """Base class: a problem the program explains to the user in one line."""


class ConfigError(WatchfolderError):
    """A config file that cannot be used. Carries the file and every problem found, each with its key."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        lines = [f"{self.path}: {len(self.problems)} problem(s) in the config:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


class UsageError(WatchfolderError):
    """Bad command-line use (exit 2)."""


class MediaError(WatchfolderError):
    """A file we refuse before any API call. ``code`` is ours (unsupported_media, too_large, …)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class StoreError(WatchfolderError):
    """The state database refused an operation (lost compare-and-set, locked, corrupt)."""


class DamagedStateError(StoreError):
    """The state database failed its integrity check at start: the daemon stops (exit 2) with the fix."""


class StateLockedError(WatchfolderError):
    """Another daemon already holds the state directory."""


class AuthError(WatchfolderError):
    """Tokens are missing, unusable or refused; the account needs `watchfolder auth login`."""

    def __init__(self, account: str, message: str, code: str = "auth_required") -> None:
        self.account = account
        self.code = code
        self.message = message
        super().__init__(message)


class TikTokError(WatchfolderError):
    """TikTok (or the network on the way) said no.

    ``action`` is the policy decision from ``tiktok.codes``; ``retry_at`` is set when the
    answer itself says when to come back (a cap's window); ``advice`` is one sentence for the user.
    Messages never carry tokens: the client builds them from the error envelope only.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        action: Action,
        log_id: str = "",
        http_status: int | None = None,
        advice: str = "",
        retry_at: datetime | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.action = action
        self.log_id = log_id
        self.http_status = http_status
        self.advice = advice
        self.retry_at = retry_at
        super().__init__(f"{code}: {message}" if message else code)

    def as_dict(self) -> dict[str, str]:
        """The sidecar's ``error`` object."""
        return {"code": self.code, "message": self.advice or self.message, "log_id": self.log_id}
