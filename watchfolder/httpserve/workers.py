"""The worker side: at most ``Limits.workers`` threads answer complete requests, one at a time each.

A worker runs the handler on a request the selector received whole, under the request's deadline;
a connection that may carry another request is given back to the selector, any other is closed (with
a reset when the client was too slow). Nothing one request does, a handler's bug included, ends a
worker.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from watchfolder.httpserve.framing import plain
from watchfolder.httpserve.handler import BoundedHandler, Request
from watchfolder.httpserve.sockets import abort, close_quietly, send_quietly

if TYPE_CHECKING:
    from watchfolder.httpserve.server import BoundedServer

_Job = tuple[socket.socket, Any, bytes, bytes]  # socket, client address, the request, what followed it


class Workers:
    """A lazily grown pool of at most ``server.limits.workers`` daemon threads."""

    def __init__(self, server: BoundedServer, handler: type[BoundedHandler], *,
                 report: Callable[[Any, BaseException], None],
                 give_back: Callable[[socket.socket, Any, bytes], bool]) -> None:
        """``report`` is told of exceptions; ``give_back`` takes a kept-alive connection (False: close it)."""
        self.server, self.handler, self.limits = server, handler, server.limits
        self._report, self._give_back = report, give_back
        self._lock = threading.Lock()
        self._active: set[socket.socket] = set()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a job
        self._queued = 0  # jobs no thread has taken yet

    def active_count(self) -> int:
        """Connections being answered or waiting for a worker."""
        with self._lock:
            return len(self._active)

    def dispatch(self, sock: socket.socket, address: Any, request: bytes, rest: bytes) -> None:
        """Queue a complete request; start a thread if none is free and the cap allows."""
        with self._lock:
            self._active.add(sock)
            self._queued += 1
            if self._queued > self._idle and len(self._threads) < self.limits.workers:
                thread = threading.Thread(target=self._loop, name=f"http-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                self._idle += 1
                thread.start()
        self._jobs.put((sock, address, request, rest))

    def close(self) -> None:
        """Cut every connection being answered (a worker blocked on one returns at once); end the threads."""
        with self._lock:
            for sock in self._active:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = len(self._threads)
        for _ in range(threads):
            self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
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
                if not (keep and self._give_back(sock, address, rest)):
                    close_quietly(sock)

    def _answer(self, sock: socket.socket, address: Any, data: bytes) -> bool:
        """Run the handler on one request; return True when the connection may carry another."""
        sock.setblocking(True)
        request = Request(sock, data, time.monotonic() + self.limits.request_seconds)
        try:
            handler = self.handler(request, address, self.server)  # type: ignore[arg-type]  # runs the handler
        except OSError:
            request.timed_out = True
            return False  # the client went away or was too slow
        except Exception as exc:  # noqa: BLE001 - a handler's bug must cost one connection, never the server
            self._report(address, exc)
            if request.written == 0:
                send_quietly(sock, plain(500, "internal error\n"), blocking=True)
            return False
        finally:
            if request.timed_out:
                abort(sock)
        if request.timed_out:
            return False
        try:
            sock.setblocking(False)
        except OSError:
            return False
        return not handler.close_connection
