"""Health and metrics: one health rule for systemd's watchdog and /healthz, and Prometheus /metrics.

The daemon is healthy when its main loop ran recently, its store took a write recently, and every
inbox that exists has a live observer (an inbox that is missing, e.g. an unmounted share, is reported
but does not make the daemon unhealthy: restarting would not bring the share back). ``HealthMonitor``
is a daemon hook that probes the store from the main loop; ``check`` may be called from any thread.

``MetricsServer`` (``metrics.listen``) answers ``/healthz`` (200 or 503 with a JSON report) and
``/metrics`` (Prometheus text, built with prometheus-client from the store at each scrape, so the
numbers survive restarts and match what ``status`` shows).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from watchfolder import __version__, logs
from watchfolder.config.settings import Settings
from watchfolder.core.errors import AuthError, WatchfolderError
from watchfolder.core.model import State
from watchfolder.daemon.hooks import DaemonView
from watchfolder.httpserve import BoundedHandler, BoundedServer, Limits
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenStore

LOOP_STALE_SECONDS = 30.0    # a main loop silent this long is hung (a pass normally takes well under a second)
STORE_PROBE_SECONDS = 5.0    # how often the main loop proves the store still takes a write
STORE_STALE_SECONDS = 30.0   # no successful write for this long: the store counts as unwritable


@dataclasses.dataclass(frozen=True)
class Health:
    """A health verdict: ``ok`` and, when not, one sentence per problem; the details for /healthz."""

    ok: bool
    problems: tuple[str, ...]
    loop_age_seconds: float | None
    store_ok: bool
    observers: tuple[dict[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": "ok" if self.ok else "unhealthy", "problems": list(self.problems),
                "loop_age_seconds": self.loop_age_seconds, "store_ok": self.store_ok,
                "observers": list(self.observers)}


class HealthMonitor:
    """The one health rule (see the module docstring), as a daemon hook. Register it before its readers."""

    def __init__(self, *, loop_stale_seconds: float = LOOP_STALE_SECONDS,
                 probe_seconds: float = STORE_PROBE_SECONDS, store_stale_seconds: float = STORE_STALE_SECONDS) -> None:
        self.loop_stale_seconds = loop_stale_seconds
        self.probe_seconds = probe_seconds
        self.store_stale_seconds = store_stale_seconds
        self.daemon: DaemonView | None = None
        self.stopped = False
        self.store_written_at = 0.0
        self.store_error = ""
        self._last_probe = 0.0

    def on_ready(self, daemon: DaemonView) -> None:
        self.daemon = daemon
        self.store_written_at = self._last_probe = time.monotonic()  # the store was just opened and migrated

    def on_tick(self, daemon: DaemonView, now: float) -> None:
        """Every few seconds, write a heartbeat row with the main loop's own connection (the real write path)."""
        mono = time.monotonic()
        if mono - self._last_probe < self.probe_seconds:
            return
        self._last_probe = mono
        try:
            daemon.state.set_runtime("health", {"at": now}, now)
        except Exception as exc:  # noqa: BLE001 - any failure to write is the finding, whatever its class
            self.store_error = f"{type(exc).__name__}: {exc}"
            return
        self.store_written_at, self.store_error = mono, ""

    def on_stop(self, daemon: DaemonView) -> None:
        self.stopped = True

    def check(self, daemon: DaemonView | None = None) -> Health:
        """Return the daemon's health now; callable from any thread (the watcher's health() takes a lock)."""
        daemon = daemon if daemon is not None else self.daemon
        if daemon is None or self.daemon is None:
            return Health(False, ("starting: the store and the observers are not ready yet",), None, False, ())
        if self.stopped or daemon.stop.is_set():
            return Health(False, ("stopping",), None, False, ())
        mono = time.monotonic()
        problems = []
        loop_age = mono - (daemon.loop_at or self.store_written_at)
        if loop_age > self.loop_stale_seconds:
            problems.append(f"the main loop has not run for {loop_age:.0f} s")
        store_ok = mono - self.store_written_at <= self.store_stale_seconds
        if not store_ok or self.store_error:
            store_ok = False
            problems.append(f"the state database takes no writes ({self.store_error or 'no recent write'})")
        for step, error in daemon.troubles().items():
            problems.append(f"the main loop cannot {step}: {error}")
        observers = []
        for inbox in daemon.inboxes():
            observers.append({"account": inbox.account, "method": inbox.method, "available": inbox.available,
                              "alive": inbox.alive, "restarts": inbox.restarts, "message": inbox.message})
            if inbox.available and not inbox.alive:
                problems.append(f"the inbox of {inbox.account} is not watched: {inbox.message}")
        return Health(not problems, tuple(problems), round(loop_age, 3), store_ok, tuple(observers))


class StoreCollector:
    """A prometheus-client collector reading the state database (read-only) at each scrape."""

    def __init__(self, settings: Settings, monitor: HealthMonitor) -> None:
        self.settings = settings
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        health = self.monitor.check()
        yield _gauge("watchfolder_healthy", "1 when the daemon is healthy (the same rule as /healthz)",
                     [((), 1.0 if health.ok else 0.0)])
        yield _gauge("watchfolder_loop_age_seconds", "Seconds since the main loop last ran",
                     [((), health.loop_age_seconds or 0.0)])
        yield _gauge("watchfolder_observer_alive", "1 while the inbox's observer runs", [
            ((o["account"], o["method"] or "none"), 1.0 if o["alive"] else 0.0) for o in health.observers],
            ["account", "method"])
        yield _gauge("watchfolder_inbox_available", "1 while the inbox folder exists and can be read", [
            ((o["account"],), 1.0 if o["available"] else 0.0) for o in health.observers], ["account"])
        yield _gauge("watchfolder_info", "The running version", [((__version__,), 1.0)], ["version"])
        yield from self._tokens()
        try:
            store = Store(self.settings.state_dir, readonly=True)
        except WatchfolderError:
            return  # no database yet: nothing more to count
        try:
            yield from self._items(store)
        finally:
            store.close()

    def _items(self, store: Store) -> Iterator[Metric]:
        names = [account.name for account in self.settings.accounts]
        by_state = {(name, str(state)): 0.0 for name in names for state in State}
        for account, state, count in store.conn.execute("SELECT account, state, COUNT(*) FROM items "
                                                        "GROUP BY account, state"):
            by_state[(account, state)] = float(count)
        yield _gauge("watchfolder_items", "Items by account and state", list(by_state.items()), ["account", "state"])
        yield _counter("watchfolder_uploads", "Items that reached TikTok, by how they ended (done, failed)",
                       _rows(store, "SELECT account, state, COUNT(*) FROM items WHERE state IN ('done', 'failed') "
                                    "AND EXISTS (SELECT 1 FROM events e WHERE e.item_id = items.id "
                                    "AND e.state = 'uploading') GROUP BY account, state"), ["account", "result"])
        yield _counter("watchfolder_uploads_started", "Uploads started (each attempt that began an init)",
                       _rows(store, "SELECT i.account, COUNT(*) FROM events e JOIN items i ON i.id = e.item_id "
                                    "WHERE e.state = 'uploading' GROUP BY i.account"), ["account"])
        yield _counter("watchfolder_uploaded_bytes", "Bytes TikTok acknowledged",
                       _rows(store, "SELECT account, SUM(uploaded_bytes) FROM items GROUP BY account"), ["account"])
        yield _counter("watchfolder_errors", "Failed items by error code (TikTok's, or ours)",
                       _rows(store, "SELECT account, COALESCE(error_code, 'unknown'), COUNT(*) FROM items "
                                    "WHERE state = 'failed' GROUP BY account, error_code"), ["account", "code"])
        yield _gauge("watchfolder_waiting_items", "Items parked in inbox/, by reason",
                     _rows(store, "SELECT account, COALESCE(wait_reason, 'unknown'), COUNT(*) FROM items "
                                  "WHERE state = 'waiting' GROUP BY account, wait_reason"), ["account", "reason"])
        daemon = self.monitor.daemon
        now = daemon.clock() if daemon is not None else time.time()  # the daemon's clock, which tests may move
        held = []
        for name in names:
            state = store.account_state(name)
            if state.paused_code:
                held.append(((name, "paused", state.paused_code), 1.0))
            elif state.wait_until and state.wait_until > now:
                held.append(((name, "waiting", state.wait_reason or "unknown"), 1.0))
        yield _gauge("watchfolder_account_held", "1 while an account is paused or waits (a cap, a rate limit)",
                     held, ["account", "kind", "reason"])

    def _tokens(self) -> Iterator[Metric]:
        tokens = TokenStore(self.settings.state_dir)
        signed_in, expiry = [], []
        for account in self.settings.accounts:
            try:
                held = tokens.load(account.name)
            except AuthError:
                held = None
            signed_in.append(((account.name,), 0.0 if held is None else 1.0))
            if held is not None:
                expiry.append(((account.name, "access"), held.access_expires_at))
                expiry.append(((account.name, "refresh"), held.refresh_expires_at))
        yield _gauge("watchfolder_signed_in", "1 when the account has stored tokens", signed_in, ["account"])
        yield _gauge("watchfolder_token_expiry_timestamp_seconds",
                     "When the access and refresh tokens expire (Unix time)", expiry, ["account", "token"])


def _rows(store: Store, sql: str) -> list[tuple[tuple[str, ...], float]]:
    return [(tuple(str(v) for v in row[:-1]), float(row[-1] or 0)) for row in store.conn.execute(sql)]


def _gauge(name: str, text: str, samples: list[tuple[tuple[str, ...], float]],
           labels: list[str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=labels or [])
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _counter(name: str, text: str, samples: list[tuple[tuple[str, ...], float]],
             labels: list[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class MetricsServer:
    """The /healthz and /metrics server, as a daemon hook. Serves from construction, so a taken port fails
    before anything else starts, and /healthz says "starting" until the daemon is ready."""

    def __init__(self, settings: Settings, monitor: HealthMonitor, *, log: Any = None) -> None:
        """Given the settings (``metrics.listen`` set) and the shared monitor, bind the address and serve.

        Raise WatchfolderError naming the address when it cannot be bound.
        """
        if settings.metrics.listen is None:
            raise ValueError("metrics.listen is not set")
        self.monitor = monitor
        self.log = log if log is not None else logs.get_logger()
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(settings, monitor))
        ProcessCollector(registry=self.registry)
        host, port = settings.metrics.listen
        try:
            self.server = _Server((host, port), _Handler, self)
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
    server: _Server  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # http.server's name
        return None  # scrapes every 15 s would drown the daemon's own lines

    def do_GET(self) -> None:  # the name http.server calls
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            health = owner.monitor.check()
            self._send(200 if health.ok else 503, "application/json",
                       json.dumps(health.as_dict(), ensure_ascii=False).encode(), body)
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(owner.registry), body)
        elif path == "/":
            self._send(200, "text/plain; charset=utf-8", b"watchfolder: /healthz, /metrics\n", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n", body)

    def _send(self, status: int, content_type: str, payload: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(payload)
