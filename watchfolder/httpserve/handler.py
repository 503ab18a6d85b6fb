"""The handler side: one complete request per ``BoundedHandler``, answered under its deadline."""

from __future__ import annotations

import io
import os
import select
import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from watchfolder.httpserve.server import BoundedServer

_SLICE = 8 * 1024 * 1024  # sendfile in slices, so the request deadline is checked between them


@dataclass
class Request:
    """What a worker hands its handler: the socket, the complete request bytes, the answer's deadline."""

    sock: socket.socket
    data: bytes
    deadline: float
    written: int = 0  # bytes of the answer sent so far
    timed_out: bool = False  # the client was too slow: the connection is reset, not closed gracefully


class _Writer(io.BufferedIOBase):
    """The handler's wfile: every write waits at most io_seconds and never past the request deadline."""

    def __init__(self, handler: BoundedHandler) -> None:
        self._handler = handler

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with memoryview(data) as view:
            self._handler.connection.settimeout(self._handler.io_timeout())
            try:
                self._handler.connection.sendall(view)
            except TimeoutError:
                self._handler.request.timed_out = True
                raise
            self._handler.request.written += view.nbytes
            return view.nbytes


class BoundedHandler(BaseHTTPRequestHandler):
    """A request handler for ``BoundedServer``: one complete request per instance, answered under a deadline."""

    server: BoundedServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # no HTTP/0.9: every answer, errors too, starts with a status line
    request: Request  # a Request instead of a bare socket
    wfile: _Writer

    def setup(self) -> None:
        """Read from the request the selector received; write to the socket under the deadline."""
        self.connection = self.request.sock
        self.deadline = self.request.deadline
        self.rfile = io.BytesIO(self.request.data)
        self.wfile = _Writer(self)

    def handle(self) -> None:
        """Answer exactly one request; the server keeps the connection for the next one unless it must close."""
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        """Nothing is buffered on the way out; nothing to close (the server owns the socket)."""

    def handle_expect_100(self) -> bool:
        return True  # the selector already sent 100 Continue when it waited for the body

    def remaining(self) -> float:
        """Seconds left until this request's deadline (negative when past)."""
        return self.deadline - time.monotonic()

    def io_timeout(self) -> float:
        """The timeout for the next socket operation; raise TimeoutError when the deadline has passed."""
        left = self.remaining()
        if left <= 0:
            self.request.timed_out = True
            raise TimeoutError("the request took longer than its deadline")
        return min(self.server.limits.io_seconds, left)

    def send_file_range(self, file: BinaryIO, first: int, count: int) -> None:
        """Send count bytes of file from first (sendfile where possible), within the request deadline.

        Every wait for the client is bounded by io_timeout(), so a client that reads a trickle is cut
        off at the deadline too, which ``Limits.min_rate`` brings forward to what the size needs at
        that rate. Raise TimeoutError then, EOFError when the file ends early.
        """
        limits = self.server.limits
        if limits.min_rate > 0:
            needed = max(limits.rate_grace_seconds, count / limits.min_rate)
            self.deadline = min(self.deadline, time.monotonic() + needed)
        offset, left = first, count
        if not hasattr(os, "sendfile"):
            file.seek(first)
            while left > 0 and (block := file.read(min(left, 1024 * 1024))):
                self.wfile.write(block)
                left -= len(block)
            if left:
                raise EOFError("the file ended before its announced length")
            return
        self.connection.settimeout(self.io_timeout())  # a timeout makes the descriptor non-blocking
        writable = select.poll()  # poll, unlike epoll, needs no descriptor of its own (EMFILE-proof)
        writable.register(self.connection, select.POLLOUT)
        while left > 0:
            try:
                sent = os.sendfile(self.connection.fileno(), file.fileno(), offset, min(left, _SLICE))
            except BlockingIOError:
                if not writable.poll(self.io_timeout() * 1000):
                    self.request.timed_out = True
                    raise TimeoutError("the client read nothing for too long") from None
                continue
            if sent == 0:
                raise EOFError("the file ended before its announced length")
            offset, left = offset + sent, left - sent
            self.request.written += sent
