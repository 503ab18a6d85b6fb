"""Where a request ends, or why it is refused: pure bookkeeping over the bytes received so far.

``Framing`` holds one connection's bytes while its next request arrives. Each ``feed`` says whether
the request is complete (``Complete``: its bytes, and what followed them), over a limit
(``Refusal``: the status and a short text), or still arriving (None). Each byte is searched once for
the end of the headers, however slowly the bytes come. Field lines are read strictly (RFC 9112), so
a proxy in front and this server never disagree on where a request ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from watchfolder.httpserve.limits import MAX_DIGITS, Limits

_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_EXPECT_CONTINUE = re.compile(rb"\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """Answer ``code`` with ``text`` and close."""

    code: int
    text: str


@dataclass(frozen=True)
class Complete:
    """A whole request (line, headers, body) and the bytes that came after it (a pipelined request)."""

    request: bytes
    rest: bytes


class Framing:
    """One connection's bytes until its next request is complete."""

    def __init__(self, limits: Limits, data: bytes = b"") -> None:
        self.limits = limits
        self.buffer = bytearray(data)
        self._scanned = 0  # bytes of the buffer already searched for the end of the headers
        self._line_seen = False  # the request line is complete
        self._head: bytes | None = None  # the request line and headers, once complete and checked
        self._length = 0  # the body length they announce
        self._continue_due = False  # headers with Expect: 100-continue arrived without their body
        self._continued = False

    def feed(self, data: bytes = b"") -> Complete | Refusal | None:
        """Given newly received bytes (or none, to look at what is held), say where the request stands."""
        self.buffer += data
        limits = self.limits
        if self._head is None:
            while not self._scanned and self.buffer and self.buffer[0] in b"\r\n":
                del self.buffer[:1]  # empty lines before a request line are to be ignored (RFC 9112)
            start = max(0, self._scanned - 3)
            if not self._line_seen:
                self._line_seen = self.buffer.find(b"\n", start, limits.max_request_line + 1) >= 0
                if not self._line_seen and len(self.buffer) > limits.max_request_line:
                    return Refusal(414, "request line too long\n")
            end = _END.search(self.buffer, start, limits.max_header_bytes + 4)
            if end is None:
                self._scanned = len(self.buffer)
                return Refusal(431, "request headers too large\n") if len(self.buffer) > limits.max_header_bytes \
                    else None
            head = bytes(self.buffer[:end.end()])
            if head.count(b"\n") - 2 > limits.max_headers:
                return Refusal(431, "too many request headers\n")
            length, refusal = body_length(head, limits.max_body)
            if refusal is not None:
                return refusal
            self._head, self._length = head, length
        total = len(self._head) + self._length
        if len(self.buffer) < total:
            self._continue_due = not self._continued and bool(_EXPECT_CONTINUE.search(self._head))
            return None
        return Complete(bytes(self.buffer[:total]), bytes(self.buffer[total:]))

    def take_continue(self) -> bool:
        """True once, when the client waits for ``100 Continue`` before it sends the body."""
        due, self._continue_due = self._continue_due, False
        self._continued = self._continued or due
        return due


def body_length(head: bytes, max_body: int) -> tuple[int, Refusal | None]:
    """Given a header block, return the body length to wait for, or a refusal.

    A folded line, or whitespace or anything but a token before the colon, is refused with 400; so are
    two different Content-Lengths and one that is not a number; a chunked body gets 411.
    """
    lengths = set()
    for line in head.split(b"\n")[1:]:
        line = line.removesuffix(b"\r")
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return 0, Refusal(400, "malformed header line (folded, or not NAME: value)\n")
        name = name.lower()
        if name == b"transfer-encoding":
            return 0, Refusal(411, "send a Content-Length instead of a chunked body\n")
        if name == b"content-length":
            lengths.add(value.strip())
    if not lengths:
        return 0, None
    value = lengths.pop()
    if lengths or not value.isdigit() or len(value) > MAX_DIGITS:
        return 0, Refusal(400, "bad Content-Length\n")
    if int(value) > max_body:
        return 0, Refusal(413, "request body too large\n")
    return int(value), None


def plain(code: int, text: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole short answer: status line, plain-text body, ``Connection: close``."""
    reason = BaseHTTPRequestHandler.responses.get(code, ("Error",))[0]
    body = text.encode()
    lines = [f"HTTP/1.1 {code} {reason}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
