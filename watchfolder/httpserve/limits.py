"""What one server may spend (``Limits``), and the one header a handler parses itself (``byte_range``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DIGITS = 18  # a number longer than this in Content-Length or Range is malformed, never int()ed


@dataclass(frozen=True)
class Limits:
    """How much one server may spend: threads, connections, time and bytes (see the package docstring)."""

    workers: int = 8
    max_connections: int = 128
    header_seconds: float = 10.0
    request_seconds: float = 30.0
    io_seconds: float = 10.0
    max_request_line: int = 8 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    max_body: int = 64 * 1024
    # A file sent with send_file_range must also go at least this fast on average (bytes per second,
    # 0: no floor) once ``rate_grace_seconds`` have passed, so a client reading a trickle holds a
    # worker for minutes, not for the whole request deadline.
    min_rate: float = 0.0
    rate_grace_seconds: float = 60.0


class Unsatisfiable(Exception):
    """A Range that starts past the end of the representation (answer 416)."""


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Given a Range header and a size, return (first, last) of one range, or None to send it all.

    Raise Unsatisfiable when the range starts past the end. Multiple ranges, malformed headers and
    numbers too long to be real are ignored (a full 200 is allowed by RFC 9110).
    """
    match = re.fullmatch(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", header[:100])
    if not match or not (match[1] or match[2]) or max(len(match[1]), len(match[2])) > MAX_DIGITS:
        return None
    if match[1]:
        first = int(match[1])
        last = int(match[2]) if match[2] else size - 1
        if match[2] and last < first:
            return None  # an invalid range-spec: ignored, not refused
        if first >= size:
            raise Unsatisfiable
        return first, min(last, size - 1)
    suffix = int(match[2])
    if suffix == 0 or size == 0:
        raise Unsatisfiable
    return max(0, size - suffix), size - 1
