"""What a handler sees of one request: already read, with the log_id its answer will carry."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message


@dataclass(frozen=True)
class Request:
    """One API request. ``query`` holds each parameter's values; ``body`` is the whole body (JSON and
    form endpoints only; the chunk PUT streams its body instead)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    client_host: str
    server_host: str  # "host:port" the server is bound to, for URLs when no Host header came
    log_id: str

    def param(self, name: str) -> str | None:
        """Return the first value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[0] if values else None
