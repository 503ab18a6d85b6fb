"""The Prometheus numbers: a prometheus-client collector that reads the state database at each scrape.

Built from the store (read-only, a connection per scrape, aggregate queries from ``store.queries``)
so the numbers survive restarts and match what ``status`` shows; the health gauges come from the
shared ``HealthMonitor``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from watchfolder import __version__
from watchfolder.config.settings import Settings
from watchfolder.core.errors import AuthError, WatchfolderError
from watchfolder.ops.health import HealthMonitor
from watchfolder.store import queries
from watchfolder.store.store import Store
from watchfolder.tiktok.tokens import TokenStore


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
        by_state = {key: float(count) for key, count in queries.counts_by_state(store, names).items()}
        yield _gauge("watchfolder_items", "Items by account and state", list(by_state.items()), ["account", "state"])
        yield _counter("watchfolder_uploads", "Items that reached TikTok, by how they ended (done, failed)",
                       queries.uploads_by_result(store, names), ["account", "result"])
        yield _counter("watchfolder_uploads_started", "Uploads started (each attempt that began an init)",
                       queries.uploads_started(store, names), ["account"])
        yield _counter("watchfolder_uploaded_bytes", "Bytes TikTok acknowledged",
                       queries.uploaded_bytes(store, names), ["account"])
        yield _counter("watchfolder_errors", "Failed items by error code (TikTok's, or ours)",
                       queries.errors_by_code(store, names), ["account", "code"])
        yield _gauge("watchfolder_waiting_items", "Items parked in inbox/, by reason",
                     queries.waiting_by_reason(store, names), ["account", "reason"])
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


def _gauge(name: str, text: str, samples: Sequence[tuple[Sequence[str], float]],
           labels: list[str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=labels or [])
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _counter(name: str, text: str, samples: Sequence[tuple[Sequence[str], float]],
             labels: list[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family
