"""/healthz and /metrics over real HTTP from a daemon on real folders: health follows the observers and the
main loop, and the Prometheus numbers match what a run did."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Rig, wait_for
from watchfolder.core.errors import WatchfolderError
from watchfolder.daemon.loop import Daemon
from watchfolder.media import samples
from watchfolder.ops import metrics
from watchfolder.ops.health import HealthMonitor


def start(rig: Rig, hooks: list[Any]) -> Daemon:
    """The daemon in a thread with these hooks, returned at once (rig.stop() still stops it)."""
    return rig.start(hooks, wait=False)


def serve(rig: Rig, **monitor_options: float) -> tuple[str, Daemon]:
    """Start the rig's daemon with a health monitor and the metrics server on a free port; return its URL."""
    monitor = HealthMonitor(**monitor_options)
    server = metrics.MetricsServer(rig.settings, monitor)
    daemon = start(rig, [monitor, server])
    url = f"http://127.0.0.1:{server.port}"
    wait_for(lambda: _status(url + "/healthz") == 200, 10, what="a healthy /healthz")
    return url, daemon


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and return {(sample name, sorted labels): value}."""
    response = requests.get(url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples_by_key = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples_by_key[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples_by_key


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metrics_rig(make_rig):
    def factory(**options: Any) -> Rig:
        overrides = {"metrics.listen": "127.0.0.1:0", **options.pop("overrides", {})}
        return make_rig(overrides=overrides, **options)

    return factory


def test_healthz_turns_unhealthy_while_an_observer_is_dead_and_recovers(metrics_rig):
    rig = metrics_rig()
    url, daemon = serve(rig)
    body = requests.get(url + "/healthz", timeout=2).json()
    assert body["ok"] is True and body["store_ok"] is True
    assert [(o["account"], o["alive"]) for o in body["observers"]] == [("alice", True)]

    watcher = daemon.watcher
    healthy_factory = watcher._factory

    def broken(method: str, poll_interval: float) -> Any:
        raise OSError("no observer for this test")

    watcher._factory = broken  # its restart fails too, so the inbox stays unwatched
    watcher._observers["alice"].stop()
    wait_for(lambda: _status(url + "/healthz") == 503, 10, what="/healthz answering 503")
    answer = requests.get(url + "/healthz", timeout=2)
    assert answer.json()["ok"] is False
    assert any("inbox of alice is not watched" in problem for problem in answer.json()["problems"])
    method = body["observers"][0]["method"]  # inotify on a local disk, polling where the test folder is a share
    assert value(scrape(url), "watchfolder_observer_alive", account="alice", method=method) == 0.0
    assert value(scrape(url), "watchfolder_healthy") == 0.0

    watcher._factory = healthy_factory
    wait_for(lambda: _status(url + "/healthz") == 200, 15, what="/healthz healthy again after the restart")


def test_healthz_turns_unhealthy_when_the_main_loop_hangs(metrics_rig):
    rig = metrics_rig()
    gate = threading.Event()
    gate.set()

    class Hang:
        def on_ready(self, daemon: Any) -> None:
            return None

        def on_tick(self, daemon: Any, now: float) -> None:
            while not gate.is_set() and not daemon.stop.is_set():
                time.sleep(0.02)

        def on_stop(self, daemon: Any) -> None:
            return None

    monitor = HealthMonitor(loop_stale_seconds=0.5)
    server = metrics.MetricsServer(rig.settings, monitor)
    start(rig, [monitor, server, Hang()])
    url = f"http://127.0.0.1:{server.port}"
    wait_for(lambda: _status(url + "/healthz") == 200, 10, what="healthy")
    gate.clear()
    wait_for(lambda: _status(url + "/healthz") == 503, 5, what="503 while the loop hangs")
    assert "main loop has not run" in requests.get(url + "/healthz", timeout=2).json()["problems"][0]
    gate.set()
    wait_for(lambda: _status(url + "/healthz") == 200, 5, what="healthy once the loop runs again")


def test_metrics_count_what_a_run_did(metrics_rig, tmp_path):
    rig = metrics_rig(accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "inbox"}}, overrides={
        "upload.chunk_size": 6_000_000})
    url, daemon = serve(rig)
    sizes = {"a.mp4": 300_000, "big.mp4": 12_500_000}
    for name, size in sizes.items():
        samples.write_mp4(tmp_path / name, size=size)
        rig.drop("alice", name, tmp_path / name)
    (tmp_path / "notes.docx").write_bytes(b"not a video")
    rig.drop("bob", "notes.docx", tmp_path / "notes.docx")
    for name in sizes:
        rig.wait_sidecar("alice", name)
    rig.wait_sidecar("bob", "notes.docx", folder="failed")

    found = scrape(url)
    assert value(found, "watchfolder_items", account="alice", state="done") == 2
    assert value(found, "watchfolder_items", account="alice", state="failed") == 0
    assert value(found, "watchfolder_items", account="bob", state="failed") == 1
    assert value(found, "watchfolder_items", account="bob", state="queued") == 0
    assert value(found, "watchfolder_uploads_total", account="alice", result="done") == 2
    assert value(found, "watchfolder_uploads_total", account="bob", result="failed") is None, "never reached TikTok"
    assert value(found, "watchfolder_uploads_started_total", account="alice") == 2
    assert value(found, "watchfolder_uploaded_bytes_total", account="alice") == sum(sizes.values())
    assert value(found, "watchfolder_errors_total", account="bob", code="unsupported_media") == 1
    assert value(found, "watchfolder_signed_in", account="alice") == 1
    refresh = value(found, "watchfolder_token_expiry_timestamp_seconds", account="alice", token="refresh")
    assert refresh is not None and refresh > rig.emulator.clock.now() + 300 * 86400
    assert value(found, "watchfolder_healthy") == 1
    method = daemon.watcher.health()[1].method
    assert value(found, "watchfolder_observer_alive", account="bob", method=method) == 1
    assert sum(v for (name, _), v in found.items() if name == "watchfolder_uploads_total") == \
        len(rig.emulator.records.publishes)


def test_metrics_show_waits_by_reason(metrics_rig, tmp_path):
    rig = metrics_rig()
    rig.emulator.faults.fail_next("inbox_init", error_code="spam_risk_too_many_pending_share")
    url, _ = serve(rig)
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: value(scrape(url), "watchfolder_waiting_items", account="alice", reason="pending_share"), 15,
             what="the item waiting for the pending-share cap")
    found = scrape(url)
    assert value(found, "watchfolder_account_held", account="alice", kind="waiting", reason="pending_share") == 1
    assert value(found, "watchfolder_items", account="alice", state="waiting") == 1


def test_a_taken_port_is_refused_when_the_server_is_built(metrics_rig):
    rig = metrics_rig()
    first = metrics.MetricsServer(rig.settings, HealthMonitor())
    try:
        settings = _with_listen(rig, ("127.0.0.1", first.port))
        with pytest.raises(WatchfolderError, match=f"127.0.0.1:{first.port}"):
            metrics.MetricsServer(settings, HealthMonitor())
    finally:
        first.close()


def test_healthz_says_starting_before_the_daemon_is_ready(metrics_rig):
    rig = metrics_rig()
    server = metrics.MetricsServer(rig.settings, HealthMonitor())
    try:
        answer = requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2)
        assert answer.status_code == 503 and "starting" in answer.json()["problems"][0]
        assert requests.get(f"http://127.0.0.1:{server.port}/nothing", timeout=2).status_code == 404
    finally:
        server.close()


def _with_listen(rig: Rig, listen: tuple[str, int]) -> Any:
    return dataclasses.replace(rig.settings, metrics=dataclasses.replace(rig.settings.metrics, listen=listen))
