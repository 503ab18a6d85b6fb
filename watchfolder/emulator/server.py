"""The HTTP side: routes, faults, records, and writing answers (HTTP/1.1 with keep-alive).

Nothing is logged per request unless the config says ``verbose``: the emulator is the peer in benchmarks.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from watchfolder.emulator import api_oauth, api_publish, control, upload
from watchfolder.emulator.envelope import (
    OAUTH_ENDPOINTS,
    ApiError,
    Response,
    error_envelope,
    new_log_id,
    oauth_error,
    status_for,
)
from watchfolder.emulator.faults import Fault
from watchfolder.emulator.records import RequestRecord
from watchfolder.emulator.request import Request
from watchfolder.emulator.state import EmulatorState

Handler = Callable[[EmulatorState, Request], Response]
ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("POST", "/v2/post/publish/creator_info/query/"): ("creator_info", api_publish.creator_info),
    ("POST", "/v2/post/publish/video/init/"): ("video_init", api_publish.video_init),
    ("POST", "/v2/post/publish/inbox/video/init/"): ("inbox_init", api_publish.inbox_init),
    ("POST", "/v2/post/publish/content/init/"): ("content_init", api_publish.content_init),
    ("POST", "/v2/post/publish/status/fetch/"): ("status", api_publish.status_fetch),
    ("POST", "/v2/post/publish/cancel/"): ("cancel", api_publish.cancel),
    ("POST", "/v2/oauth/token/"): ("token", api_oauth.token),
    ("POST", "/v2/oauth/revoke/"): ("revoke", api_oauth.revoke),
    ("GET", "/v2/user/info/"): ("user_info", api_oauth.user_info),
    ("GET", "/v2/auth/authorize/"): ("authorize", api_oauth.authorize),
}
KNOWN_PATHS = frozenset(path for _, path in ROUTES)
UPLOAD_PATHS = frozenset({"/video/", "/upload/"})
MAX_BODY = 1024 * 1024  # JSON and form bodies; the chunk PUT streams instead


class EmulatorServer(ThreadingHTTPServer):
    """A threading server that remembers its open connections, so ``stop`` can end keep-alive ones too."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        self.state = state
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection down, so an idle keep-alive client cannot be served after stop."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class IPv6EmulatorServer(EmulatorServer):
    address_family = socket.AF_INET6


def make_server(host: str, port: int, state: EmulatorState) -> EmulatorServer:
    """Bind a server for ``state`` on ``host:port`` (IPv6 when the host has a colon)."""
    server_class = IPv6EmulatorServer if ":" in host else EmulatorServer
    return server_class((host, port), state)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TikTokEmulator/1.0"
    sys_version = ""
    timeout = 300  # an idle keep-alive connection is closed after this many seconds
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add about 40 ms to every answer.
    disable_nagle_algorithm = True
    server: EmulatorServer

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        """Silence http.server's own per-request log; ``verbose`` prints our one line instead."""

    def dispatch(self) -> None:
        emu = self.server.state
        split = urlsplit(self.path)
        path = split.path if split.path.endswith("/") else split.path + "/"
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith(control.PREFIX):
            body = self.read_body()
            if body is None:
                self.write(Response(411, close=True))
                return
            self.write(control.handle(emu, self.command, path, body, self.client_address[0]))
            return
        if path in UPLOAD_PATHS and self.command == "PUT":
            endpoint, handler = "upload", None
        elif (self.command, path) in ROUTES:
            endpoint, handler = ROUTES[(self.command, path)]
        else:
            self.read_body()
            status = 405 if path in KNOWN_PATHS or path in UPLOAD_PATHS else 404
            log_id = new_log_id(emu.clock.now())
            code = "invalid_params" if status == 405 else "not_found"
            self.write(error_envelope(emu.config, log_id, status, code,
                                      f"{self.command} {path} is not an endpoint of this API"))
            return
        log_id = new_log_id(emu.clock.now())
        owner = emu.token_owner(self.headers.get("Authorization"))
        fault = emu.faults.take(endpoint)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)  # real time on purpose: the client's timeout is what is under test
            fault = None
        drop_after = fault is not None and fault.kind == "drop_after"
        if drop_after:
            fault = None  # the call is carried out; only its answer is lost
        if handler is None:
            try:
                answer = upload.handle_put(emu, query, self.headers, self.rfile, fault)
            except Exception:  # noqa: BLE001 - an emulator bug: say so loudly below, answer 500
                traceback.print_exc(file=sys.stderr)
                answer = Response(500, close=True, error_code="internal_error")
        else:
            answer = self.answer(emu, endpoint, handler, path, query, log_id, fault)
        if drop_after:
            answer = dataclasses.replace(answer, status=upload.DROP, error_code=answer.error_code or "answer_dropped")
        self.finish_call(emu, endpoint, answer, owner)

    def answer(self, emu: EmulatorState, endpoint: str, handler: Handler, path: str, query: dict[str, list[str]],
               log_id: str, fault: Fault | None) -> Response:
        """Read the body and return the handler's answer, a fault's, or the error it raised."""
        body = self.read_body()
        if body is None:
            return Response(413, close=True, error_code="body_not_readable")
        if fault is not None:
            return fault_answer(emu, endpoint, fault, log_id, query)
        host, port = self.server.server_address[:2]
        request = Request(self.command, path, query, self.headers, body, self.client_address[0],
                          f"{host!s}:{port}", log_id)
        try:
            return handler(emu, request)
        except ApiError as error:
            return error_envelope(emu.config, log_id, error.http_status, error.code, error.message)
        except Exception:  # noqa: BLE001 - an emulator bug: say so loudly below, answer like TikTok's 5xx
            traceback.print_exc(file=sys.stderr)
            return error_envelope(emu.config, log_id, 500, "internal_error", "emulator error")

    def finish_call(self, emu: EmulatorState, endpoint: str, answer: Response, owner: str | None) -> None:
        """Record the call, then write the answer (or drop the connection).

        Recording first means a client that has its answer can already see the record.
        """
        open_id = answer.open_id or owner
        content_range = self.headers.get("Content-Range") if endpoint == "upload" else None
        emu.records.add_request(RequestRecord(endpoint, open_id, answer.status, answer.error_code,
                                              emu.clock.now(), answer.publish_id, content_range))
        if emu.config.verbose:
            sys.stderr.write(f"{self.command} {endpoint} {answer.status} {answer.error_code or 'ok'}\n")
        if answer.status == upload.DROP:
            self.close_connection = True
        else:
            self.write(answer)

    def read_body(self) -> bytes | None:
        """Return the whole request body, or None (and close after answering) if it cannot be read."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return None
        raw = self.headers.get("Content-Length") or "0"
        if not raw.strip().isdigit() or int(raw) > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(int(raw))

    def write(self, answer: Response) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.close or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)


def fault_answer(emu: EmulatorState, endpoint: str, fault: Fault, log_id: str, query: dict[str, list[str]]) -> Response:
    """Return the answer an injected fault gives on ``endpoint``, in that endpoint's own shape."""
    if fault.kind == "drop":
        return Response(upload.DROP, error_code="connection_dropped")
    if endpoint == "authorize":
        if fault.kind == "error":
            redirect_uri = (query.get("redirect_uri") or [""])[0]
            states = query.get("state")
            state = states[0] if states else None
            return api_oauth.redirect(redirect_uri, error=fault.error_code, error_description="injected fault",
                                      state=state)
        return api_oauth.page(429 if fault.kind == "429" else fault.status, "Please try again later.")
    if endpoint in OAUTH_ENDPOINTS:
        if fault.kind == "error":
            assert fault.error_code is not None
            return oauth_error(fault.error_code, "injected fault", log_id, emu.config.oauth_error_http_status)
        status = 429 if fault.kind == "429" else fault.status
        return oauth_error("rate_limit_exceeded" if status == 429 else "server_error", "injected fault", log_id,
                           status)
    if fault.kind == "429":
        return error_envelope(emu.config, log_id, 429, "rate_limit_exceeded",
                              "The API rate limit was exceeded. Please try again later.")
    if fault.kind == "5xx":
        return error_envelope(emu.config, log_id, fault.status, "internal_error",
                              "Something went wrong. Please try again later.")
    assert fault.error_code is not None
    return error_envelope(emu.config, log_id, status_for(endpoint, fault.error_code), fault.error_code,
                          "injected fault")
