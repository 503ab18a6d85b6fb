"""A bounded HTTP/1.1 server for the daemon's two small servers (the media host and /metrics).

``http.server.ThreadingHTTPServer`` starts a thread per connection and waits as long as a client
likes: a few hundred half-sent requests hold as many threads, and a handler without a timeout waits
forever. Here, instead:

- One selector thread accepts connections and receives each request (request line, headers and a
  small body) without any thread of its own; a request not complete within ``header_seconds`` gets
  408 and the connection is closed (a slowloris client holds a file descriptor for seconds, never a
  thread). An idle keep-alive connection is closed after the same time.
- Only a complete request reaches a worker; at most ``workers`` worker threads exist. A worker's
  every socket read and write waits at most ``io_seconds``, and the whole answer must be sent within
  ``request_seconds`` (``BoundedHandler.remaining``); past that the connection is closed.
- At most ``max_connections`` connections are open. When full, the connection that has waited
  longest for its request is dropped to make room, so a flood of slow clients cannot lock out a
  prompt one; when every connection is being answered, a new one gets 503 at once.
- Limits with a clean answer, then close: request line over ``max_request_line`` bytes → 414, header
  block over ``max_header_bytes`` or more than ``max_headers`` fields → 431, a body over
  ``max_body`` → 413, a chunked body → 411, a bad Content-Length, a folded field line or a field
  name that is not a token → 400; the handler (http.server's parser) answers 400 for a malformed
  request line. Each received byte is searched once for the end of the headers, however slowly the
  bytes come.

Handlers subclass ``BoundedHandler`` (a ``BaseHTTPRequestHandler``) and keep their ``do_GET``-style
methods; the server class keeps ``ThreadingHTTPServer``'s ``serve_forever``/``shutdown``/
``server_close``/``server_address``. ``byte_range`` reads a ``Range`` header safely.

Over 300 lines because the selector loop, its limits and the handler side are one mechanism.
"""

from __future__ import annotations

import errno
import io
import os
import queue
import re
import select
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO

_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SLICE = 8 * 1024 * 1024  # sendfile in slices, so the request deadline is checked between them
_MAX_DIGITS = 18  # a number longer than this in Content-Length or Range is malformed, never int()ed
LINGER_SECONDS = 2.0  # after an error answer, how long what the client still sends is read and dropped
LINGER_BYTES = 1024 * 1024
_HEADROOM = 4  # connections dropped when the process runs out of descriptors


@dataclass(frozen=True)
class Limits:
    """How much one server may spend: threads, connections, time and bytes (see the module docstring)."""

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
    if not match or not (match[1] or match[2]) or max(len(match[1]), len(match[2])) > _MAX_DIGITS:
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


class _Conn:
    """One open connection while the selector receives its next request."""

    __slots__ = ("sock", "address", "buffer", "deadline", "waiting_since", "continued", "closing", "discarded",
                 "scanned", "line_seen", "head", "length")

    def __init__(self, sock: socket.socket, address: Any, now: float, limits: Limits) -> None:
        self.sock, self.address = sock, address
        self.buffer = bytearray()
        self.waiting_since = now
        self.deadline = now + limits.header_seconds
        self.continued = False
        self.closing = False  # answered with an error: what the client still sends is read and dropped
        self.discarded = 0
        self.scanned = 0  # bytes of the buffer already searched for the end of the headers
        self.line_seen = False  # the request line is complete
        self.head: bytes | None = None  # the request line and headers, once complete and checked
        self.length = 0  # the body length they announce


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


class BoundedServer:
    """Listen on ``address`` and answer with ``handler`` within ``limits`` (see the module docstring).

    Binds in the constructor (OSError when the address cannot be had); ``serve_forever`` runs the
    selector until ``shutdown``; ``server_close`` releases the socket and every connection.
    """

    def __init__(self, address: tuple[str, int], handler: type[BoundedHandler], limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.handler = handler
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(min(socket.SOMAXCONN, 128))
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address: tuple[Any, ...] = self.socket.getsockname()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._lock = threading.Lock()
        self._pending: dict[socket.socket, _Conn] = {}  # selector thread only
        self._returned: list[tuple[socket.socket, Any, bytes]] = []  # from workers, under _lock
        self._active: set[socket.socket] = set()  # under _lock
        self._work: queue.SimpleQueue[tuple[socket.socket, Any, bytes, bytes] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []  # under _lock
        self._idle = 0  # workers waiting for a job, under _lock
        self._queued = 0  # jobs no worker has taken yet, under _lock
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    # --- the ThreadingHTTPServer-like surface -----------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept, receive and dispatch until shutdown() (poll_interval bounds how long that takes)."""
        self._stopped.clear()
        try:
            self._selector.register(self.socket, selectors.EVENT_READ, "listen")
            self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stop.is_set():
                try:
                    self._step(poll_interval)
                except Exception as exc:  # noqa: BLE001 - a bug in one step must not stop the server for good
                    self._report(None, exc)
                    self._stop.wait(0.05)  # and must not spin if it repeats
        finally:
            for key in list(self._selector.get_map().values()):
                self._selector.unregister(key.fileobj)
            self._stopped.set()

    def _step(self, poll_interval: float) -> None:
        for key, _ in self._selector.select(self._next_timeout(poll_interval)):
            if key.data == "listen":
                self._accept()
            elif key.data == "wake":
                self._drain_wake()
            else:
                try:
                    self._receive(key.data)
                except Exception as exc:  # noqa: BLE001 - one connection's bug must cost that connection only
                    self._report(key.data.address, exc)
                    self._drop(key.data)
        self._take_back()
        self._expire()

    def _report(self, address: Any, exc: BaseException) -> None:
        try:
            self.handle_error(address, exc)
        except Exception:  # noqa: BLE001, S110 - reporting must never be what stops the server
            pass

    def shutdown(self) -> None:
        """Stop serve_forever and wait for it to return."""
        self._stop.set()
        self._wake()
        self._stopped.wait(5)

    def server_close(self) -> None:
        """Close the listening socket, every waiting connection, and cut the ones being answered."""
        self._stop.set()
        self._wake()
        self._stopped.wait(5)
        self.socket.close()
        for conn in list(self._pending.values()):
            _close(conn.sock)
        self._pending.clear()
        with self._lock:
            for sock in self._active:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # a worker blocked on it returns at once
                except OSError:
                    pass
            for sock, _, _ in self._returned:
                _close(sock)
            self._returned.clear()
            workers = list(self._workers)
        for _ in workers:
            self._work.put(None)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, address: Any, exc: BaseException) -> None:
        """Called with an exception a handler raised (after a 500 when nothing had been sent); override to log."""

    # --- the selector side ------------------------------------------------------------------

    def _next_timeout(self, poll_interval: float) -> float:
        if not self._pending:
            return poll_interval
        soonest = min(conn.deadline for conn in self._pending.values())
        return max(0.0, min(poll_interval, soonest - time.monotonic()))

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: the connection stays queued in the kernel and the listening
                    # socket stays readable. Free a few (the longest waiters: room for the new client
                    # and the file its request opens) or pause; never spin.
                    for _ in range(min(_HEADROOM, len(self._pending))):
                        self._drop(min(self._pending.values(), key=lambda c: (not c.closing, c.waiting_since)))
                    if not self._pending:
                        self._stop.wait(0.05)
                return  # ECONNABORTED and the like: that client is gone already
            sock.setblocking(False)
            if len(self._pending) + self._active_count() >= self.limits.max_connections:
                if not self._pending:
                    _refuse(sock, 503, "busy, try again\n", {"Retry-After": "1"})
                    continue
                oldest = min(self._pending.values(), key=lambda conn: (not conn.closing, conn.waiting_since))
                self._drop(oldest)
            self._watch(_Conn(sock, address, time.monotonic(), self.limits))

    def _watch(self, conn: _Conn) -> None:
        self._pending[conn.sock] = conn
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        if conn.buffer:
            self._examine(conn)  # a pipelined request may already be complete

    def _drop(self, conn: _Conn, code: int | None = None, text: str = "") -> None:
        """Close the connection; with a code, answer first and linger briefly.

        Closing a socket with unread bytes makes the kernel send a reset, which can destroy the
        answer before the client reads it; so the write side is shut, what still arrives is read and
        dropped for up to LINGER_SECONDS (or LINGER_BYTES), and only then is the socket closed.
        """
        if code is not None and not conn.closing:
            _send_quietly(conn.sock, _plain(code, text, {}))
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.closing, conn.buffer = True, bytearray()
            conn.deadline = time.monotonic() + LINGER_SECONDS
            return
        self._pending.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        _close(conn.sock)

    def _receive(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
        elif conn.closing:
            conn.discarded += len(data)
            if conn.discarded > LINGER_BYTES:
                self._drop(conn)
        else:
            conn.buffer += data
            self._examine(conn)

    def _examine(self, conn: _Conn) -> None:
        """Dispatch the request when complete, refuse it when over a limit, else keep waiting."""
        limits = self.limits
        if conn.head is None:
            while not conn.scanned and conn.buffer and conn.buffer[0] in b"\r\n":
                del conn.buffer[:1]  # empty lines before a request line are to be ignored (RFC 9112)
            start = max(0, conn.scanned - 3)  # each byte is searched once, however slowly it comes
            if not conn.line_seen:
                conn.line_seen = conn.buffer.find(b"\n", start, limits.max_request_line + 1) >= 0
                if not conn.line_seen and len(conn.buffer) > limits.max_request_line:
                    self._drop(conn, 414, "request line too long\n")
                    return
            end = _END.search(conn.buffer, start, limits.max_header_bytes + 4)
            if end is None:
                conn.scanned = len(conn.buffer)
                if len(conn.buffer) > limits.max_header_bytes:
                    self._drop(conn, 431, "request headers too large\n")
                return
            head = bytes(conn.buffer[:end.end()])
            if head.count(b"\n") - 2 > limits.max_headers:
                self._drop(conn, 431, "too many request headers\n")
                return
            length, problem = _body_length(head, limits.max_body)
            if problem:
                self._drop(conn, *problem)
                return
            conn.head, conn.length = head, length
        head, length = conn.head, conn.length
        if len(conn.buffer) < len(head) + length:
            if not conn.continued and re.search(rb"\nexpect[ \t]*:[ \t]*100-continue", head, re.IGNORECASE):
                conn.continued = True
                _send_quietly(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        request = bytes(conn.buffer[:len(head) + length])
        rest = bytes(conn.buffer[len(head) + length:])
        self._pending.pop(conn.sock, None)
        self._selector.unregister(conn.sock)
        self._dispatch(conn.sock, conn.address, request, rest)

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._pending.values() if c.deadline <= now]:
            # Bytes of a request that never completed get an answer; an idle keep-alive just ends.
            if conn.closing or not conn.buffer:
                self._drop(conn)
            else:
                self._drop(conn, 408, "request not received in time\n")

    def _take_back(self) -> None:
        with self._lock:
            returned, self._returned = self._returned, []
        now = time.monotonic()
        for sock, address, rest in returned:
            conn = _Conn(sock, address, now, self.limits)
            conn.buffer += rest
            if self._stop.is_set():
                _close(sock)
            else:
                self._watch(conn)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already pending (buffer full) or closed

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _active_count(self) -> int:
        with self._lock:
            return len(self._active)

    # --- the worker side --------------------------------------------------------------------

    def _dispatch(self, sock: socket.socket, address: Any, request: bytes, rest: bytes) -> None:
        with self._lock:
            self._active.add(sock)
            self._queued += 1
            if self._queued > self._idle and len(self._workers) < self.limits.workers:
                worker = threading.Thread(target=self._work_loop, name=f"http-{len(self._workers)}", daemon=True)
                self._workers.append(worker)
                self._idle += 1
                worker.start()
        self._work.put((sock, address, request, rest))

    def _work_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            sock, address, request, rest = job
            keep = False
            try:
                keep = self._answer(sock, address, request)
            except Exception as exc:  # noqa: BLE001 - a worker must outlive anything one request does
                self._report(address, exc)
            finally:
                with self._lock:
                    self._active.discard(sock)
                    self._idle += 1
                    if keep and not self._stop.is_set():
                        self._returned.append((sock, address, rest))
                    else:
                        keep = False
                if keep:
                    self._wake()
                else:
                    _close(sock)

    def _answer(self, sock: socket.socket, address: Any, data: bytes) -> bool:
        """Run the handler on one request; return True when the connection may carry another."""
        sock.setblocking(True)
        request = Request(sock, data, time.monotonic() + self.limits.request_seconds)
        try:
            handler = self.handler(request, address, self)  # type: ignore[arg-type]  # runs the handler
        except OSError:
            request.timed_out = True
            return False  # the client went away or was too slow
        except Exception as exc:  # noqa: BLE001 - a handler's bug must cost one connection, never the server
            self._report(address, exc)
            if request.written == 0:
                _send_quietly(sock, _plain(500, "internal error\n", {}), blocking=True)
            return False
        finally:
            if request.timed_out:
                _abort(sock)
        if request.timed_out:
            return False
        try:
            sock.setblocking(False)
        except OSError:
            return False
        return not handler.close_connection


def _body_length(head: bytes, max_body: int) -> tuple[int, tuple[int, str] | None]:
    """Given a header block, return the body length to wait for, or a refusal (code, text).

    Field lines are read strictly (RFC 9112): a folded line, or whitespace or anything but a token
    before the colon, is refused with 400, so a proxy in front of us and this server can never
    disagree on where a request ends.
    """
    lengths = set()
    for line in head.split(b"\n")[1:]:
        line = line.removesuffix(b"\r")
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return 0, (400, "malformed header line (folded, or not NAME: value)\n")
        name = name.lower()
        if name == b"transfer-encoding":
            return 0, (411, "send a Content-Length instead of a chunked body\n")
        if name == b"content-length":
            lengths.add(value.strip())
    if not lengths:
        return 0, None
    value = lengths.pop()
    if lengths or not value.isdigit() or len(value) > _MAX_DIGITS:
        return 0, (400, "bad Content-Length\n")
    if int(value) > max_body:
        return 0, (413, "request body too large\n")
    return int(value), None


def _plain(code: int, text: str, headers: dict[str, str]) -> bytes:
    reason = BaseHTTPRequestHandler.responses.get(code, ("Error",))[0]
    body = text.encode()
    lines = [f"HTTP/1.1 {code} {reason}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _refuse(sock: socket.socket, code: int, text: str, headers: dict[str, str] | None = None) -> None:
    """Answer with a short plain-text error without waiting on a slow client, then close."""
    _send_quietly(sock, _plain(code, text, headers or {}))
    _close(sock)


def _send_quietly(sock: socket.socket, data: bytes, *, blocking: bool = False) -> None:
    try:
        if blocking:
            sock.settimeout(1.0)
            sock.sendall(data)
        else:
            sock.send(data)  # non-blocking: what does not fit in the socket buffer is not sent
    except OSError:
        pass


def _abort(sock: socket.socket) -> None:
    """Make the coming close a reset: what the kernel still holds for a too-slow client is dropped."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
