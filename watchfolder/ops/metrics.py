"""The /healthz and /metrics HTTP server (``metrics.listen``), as a daemon hook; unless ``metrics.page`` is
false it also serves the status page (``/``, ``/item/N``, ``/api/status``: ``ops/statuspage.py``).

``/healthz`` answers 200 or 503 with the ``HealthMonitor``'s JSON report (``ops/health.py``);
``/metrics`` is Prometheus text from the ``StoreCollector`` (``ops/collector.py``) and the process
collector, computed at each scrape.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from watchfolder import logs
from watchfolder.config.settings import Settings
from watchfolder.core.errors import WatchfolderError
from watchfolder.daemon.hooks import DaemonView
from watchfolder.httpserve.handler import BoundedHandler
from watchfolder.httpserve.limits import Limits
from watchfolder.httpserve.server import BoundedServer
from watchfolder.ops.collector import StoreCollector
from watchfolder.ops.health import HealthMonitor
from watchfolder.ops.statuspage import StatusPage


class MetricsServer:
    """The /healthz and /metrics server, as a daemon hook. Serves from construction, so a taken port fails
    before anything else starts, and /healthz says "starting" until the daemon is ready."""

    def __init__(self, settings: Settings, monitor: HealthMonitor, *, log: logs.Logger | None = None,
                 limits: Limits | None = None, clock: Callable[[], float] = time.time) -> None:
        """Given the settings (``metrics.listen`` set), the shared monitor, the server's limits (default
        ``LIMITS``) and the clock the status page reads "now" from, bind the address and serve.

        Raise WatchfolderError naming the address when it cannot be bound.
        """
        if settings.metrics.listen is None:
            raise ValueError("metrics.listen is not set")
        self.monitor = monitor
        self.log = log if log is not None else logs.get_logger()
        self.clock = clock
        logs.register_secret(settings.metrics.password)
        self.page = StatusPage(settings, lambda: monitor.check().as_dict())
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(settings, monitor))
        ProcessCollector(registry=self.registry)
        host, port = settings.metrics.listen
        try:
            self.server = _Server((host, port), _Handler, self, limits or LIMITS)
        except OSError as exc:
            raise WatchfolderError(f"metrics.listen {host}:{port}: cannot listen there ({exc.strerror or exc}); "
                                   "is another watchfolder (or another program) using that port?") from None
        self.thread: threading.Thread | None = None
        self.start()  # at once: while the daemon starts, /healthz answers 503 "starting" instead of nothing

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                           name="metrics", daemon=True)
            self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=5)
            self.thread = None
        self.server.server_close()

    def on_ready(self, daemon: DaemonView) -> None:
        self.log.info("metrics_listening", address=f"{self.server.server_address[0]}:{self.port}")

    def on_tick(self, daemon: DaemonView, now: float) -> None:
        return None  # everything is computed when asked

    def on_stop(self, daemon: DaemonView) -> None:
        self.close()


# A scrape every few seconds and a person with a browser: a few workers, short deadlines.
LIMITS = Limits(workers=4, max_connections=64, header_seconds=10, request_seconds=30, io_seconds=10)


class _Server(BoundedServer):
    def __init__(self, address: tuple[str, int], handler: type[BoundedHandler], owner: MetricsServer,
                 limits: Limits = LIMITS) -> None:
        self.owner = owner
        super().__init__(address, handler, limits)

    def handle_error(self, address: Any, exc: BaseException) -> None:
        """A bug while answering costs that request a 500, and is logged (type and message, no traceback)."""
        self.owner.log.error("metrics_request_failed", error=f"{type(exc).__name__}: {exc}"[:500])


class _Handler(BoundedHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # http.server's name
        return None  # scrapes every 15 s would drown the daemon's own lines

    def do_GET(self) -> None:  # the name http.server calls
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_POST(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if not (owner.page.handles(path) and path.startswith("/actions/")):
            self._send(404 if owner.page.settings.metrics.page else 403, "text/plain; charset=utf-8",
                       b"nothing to post here\n", True)
            return
        length = self.headers.get("Content-Length", "0")
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        answer = owner.page.post(path, body, self.client_address[0], self.headers.get("Authorization"),
                                 owner.clock())
        self._send(answer.status, answer.content_type, answer.body, True, answer.headers)

    def _answer(self, *, body: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            health = owner.monitor.check()
            self._send(200 if health.ok else 503, "application/json",
                       json.dumps(health.as_dict(), ensure_ascii=False).encode(), body)
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(owner.registry), body)
        elif owner.page.handles(path):
            client, authorization = self.client_address[0], self.headers.get("Authorization")
            if owner.page.actions.needs_login(client, authorization):
                self._send(401, "text/plain; charset=utf-8", b"the status page needs its password\n", body,
                           {"WWW-Authenticate": 'Basic realm="watchfolder", charset="UTF-8"'})
                return
            answer = owner.page.get(path, owner.clock(), forms_on=owner.page.actions.may_act(client, authorization))
            self._send(answer.status, answer.content_type, answer.body, body, answer.headers)
        elif path == "/":
            self._send(200, "text/plain; charset=utf-8", b"watchfolder: /healthz, /metrics\n", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n", body)

    def _send(self, status: int, content_type: str, payload: bytes, body: bool,
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)
