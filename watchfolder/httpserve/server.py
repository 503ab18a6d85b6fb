"""The selector side: one thread accepts connections and receives every request before a worker sees it."""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from typing import Any

from watchfolder.httpserve.framing import Complete, Framing, Refusal, plain
from watchfolder.httpserve.handler import BoundedHandler
from watchfolder.httpserve.limits import Limits
from watchfolder.httpserve.sockets import close_quietly, send_quietly
from watchfolder.httpserve.workers import Workers

LINGER_SECONDS = 2.0  # after an error answer, how long what the client still sends is read and dropped
LINGER_BYTES = 1024 * 1024
_HEADROOM = 4  # connections dropped when the process runs out of descriptors
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Conn:
    """One open connection while the selector receives its next request."""

    __slots__ = ("sock", "address", "framing", "deadline", "waiting_since", "closing", "discarded")

    def __init__(self, sock: socket.socket, address: Any, now: float, limits: Limits, data: bytes = b"") -> None:
        self.sock, self.address = sock, address
        self.framing = Framing(limits, data)
        self.waiting_since = now
        self.deadline = now + limits.header_seconds
        self.closing = False  # answered with an error: what the client still sends is read and dropped
        self.discarded = 0


class BoundedServer:
    """Listen on ``address`` and answer with ``handler`` within ``limits`` (see the package docstring).

    Binds in the constructor (OSError when the address cannot be had); ``serve_forever`` runs the
    selector until ``shutdown``; ``server_close`` releases the socket and every connection.
    """

    def __init__(self, address: tuple[str, int], handler: type[BoundedHandler], limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
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
        self._pending: dict[socket.socket, _Conn] = {}  # selector thread only
        self._lock = threading.Lock()
        self._returned: list[tuple[socket.socket, Any, bytes]] = []  # from workers, under _lock
        self._workers = Workers(self, handler, report=self._report, give_back=self._give_back)
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

    def shutdown(self) -> None:
        """Stop serve_forever and wait for it to return."""
        self._stop.set()
        self._wake()
        self._stopped.wait(5)

    def server_close(self) -> None:
        """Close the listening socket, every waiting connection, and cut the ones being answered."""
        self.shutdown()
        self.socket.close()
        for conn in list(self._pending.values()):
            close_quietly(conn.sock)
        self._pending.clear()
        with self._lock:
            for sock, _, _ in self._returned:
                close_quietly(sock)
            self._returned.clear()
        self._workers.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, address: Any, exc: BaseException) -> None:
        """Called with an exception a handler raised (after a 500 when nothing had been sent); override to log."""

    # --- one turn of the selector -----------------------------------------------------------

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

    def _next_timeout(self, poll_interval: float) -> float:
        if not self._pending:
            return poll_interval
        soonest = min(conn.deadline for conn in self._pending.values())
        return max(0.0, min(poll_interval, soonest - time.monotonic()))

    def _oldest(self) -> _Conn:
        """The connection to drop first: one already refused, else the one that has waited longest."""
        return min(self._pending.values(), key=lambda conn: (not conn.closing, conn.waiting_since))

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    # The connection stays queued in the kernel and the listening socket stays
                    # readable. Free a few (room for the new client and the file its request opens)
                    # or pause; never spin.
                    for _ in range(min(_HEADROOM, len(self._pending))):
                        self._drop(self._oldest())
                    if not self._pending:
                        self._stop.wait(0.05)
                return  # ECONNABORTED and the like: that client is gone already
            sock.setblocking(False)
            if len(self._pending) + self._workers.active_count() >= self.limits.max_connections:
                if not self._pending:
                    send_quietly(sock, plain(503, "busy, try again\n", {"Retry-After": "1"}))
                    close_quietly(sock)
                    continue
                self._drop(self._oldest())
            self._watch(_Conn(sock, address, time.monotonic(), self.limits))

    def _watch(self, conn: _Conn) -> None:
        self._pending[conn.sock] = conn
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        if conn.framing.buffer:
            self._judge(conn, conn.framing.feed())  # a pipelined request may already be complete

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
            self._judge(conn, conn.framing.feed(data))

    def _judge(self, conn: _Conn, verdict: Complete | Refusal | None) -> None:
        """Act on what the framing says: dispatch the request, refuse it, or keep waiting."""
        if isinstance(verdict, Refusal):
            self._drop(conn, verdict)
        elif isinstance(verdict, Complete):
            self._pending.pop(conn.sock, None)
            self._selector.unregister(conn.sock)
            self._workers.dispatch(conn.sock, conn.address, verdict.request, verdict.rest)
        elif conn.framing.take_continue():
            send_quietly(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _drop(self, conn: _Conn, refusal: Refusal | None = None) -> None:
        """Close the connection; with a refusal, answer first and linger briefly.

        Closing a socket with unread bytes makes the kernel send a reset, which can destroy the
        answer before the client reads it; so the write side is shut, what still arrives is read and
        dropped for up to LINGER_SECONDS (or LINGER_BYTES), and only then is the socket closed.
        """
        if refusal is not None and not conn.closing:
            send_quietly(conn.sock, plain(refusal.code, refusal.text))
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.closing = True
            conn.deadline = time.monotonic() + LINGER_SECONDS
            return
        self._pending.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        close_quietly(conn.sock)

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._pending.values() if c.deadline <= now]:
            # Bytes of a request that never completed get an answer; an idle keep-alive just ends.
            if conn.closing or not conn.framing.buffer:
                self._drop(conn)
            else:
                self._drop(conn, Refusal(408, "request not received in time\n"))

    # --- connections coming back from the workers -------------------------------------------

    def _give_back(self, sock: socket.socket, address: Any, rest: bytes) -> bool:
        """Called by a worker: take a kept-alive connection back (False when stopping: the worker closes it)."""
        with self._lock:
            if self._stop.is_set():
                return False
            self._returned.append((sock, address, rest))
        self._wake()
        return True

    def _take_back(self) -> None:
        with self._lock:
            returned, self._returned = self._returned, []
        now = time.monotonic()
        for sock, address, rest in returned:
            if self._stop.is_set():
                close_quietly(sock)
            else:
                self._watch(_Conn(sock, address, now, self.limits, rest))

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
