"""The state disk fills up, and a worker dies on a bug: the daemon stays up, says what is wrong, and carries on.

A full disk is made real where every write to the state database begins (``Store.transaction``),
raising what SQLite raises then ("database or disk is full"): a small filesystem cannot be mounted
in every place the tests run.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from tests.harness import Rig, wait_for
from watchfolder.daemon import pipeline
from watchfolder.intake import intake
from watchfolder.media import samples
from watchfolder.ops import report
from watchfolder.ops.health import HealthMonitor
from watchfolder.ops.metrics import MetricsServer
from watchfolder.store.store import Store


def _healthz(url: str) -> dict[str, Any] | None:
    try:
        answer = requests.get(url + "/healthz", timeout=2)
    except requests.RequestException:
        return None
    return {"code": answer.status_code, **answer.json()}


def test_a_full_state_disk_makes_the_daemon_unhealthy_not_dead_and_it_recovers_by_itself(
        make_rig, tmp_path, monkeypatch) -> None:
    rig: Rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0"})
    full = threading.Event()
    original = Store.transaction

    @contextmanager
    def transaction(self: Store, **options: bool) -> Iterator[sqlite3.Connection]:
        if full.is_set():
            raise sqlite3.OperationalError("database or disk is full")
        with original(self, **options) as conn:
            yield conn

    monkeypatch.setattr(Store, "transaction", transaction)
    monitor = HealthMonitor()
    server = MetricsServer(rig.settings, monitor)
    daemon = rig.start([monitor, server])
    url = f"http://127.0.0.1:{server.port}"
    wait_for(lambda: (_healthz(url) or {}).get("code") == 200, 10, what="healthy at first")

    full.set()
    samples.write_mp4(tmp_path / "clip.mp4", size=90_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")

    def refused() -> dict[str, Any] | None:
        health = _healthz(url)
        return health if health and any("disk is full" in p for p in health["problems"]) else None

    # Intake cannot record the file, so the live state (which names it) cannot be written either.
    sick = wait_for(refused, 10, what="/healthz naming the write the loop could not make")
    assert sick["code"] == 503 and sick["store_ok"] is False
    assert "the main loop cannot record its live state: OperationalError: database or disk is full" in sick["problems"]
    time.sleep(1.0)   # several more passes of the loop, each failing to write
    assert rig.thread is not None and rig.thread.is_alive() and not daemon.stop.is_set()
    still = _healthz(url)
    assert still is not None and still["loop_age_seconds"] < 5   # the loop keeps running

    full.clear()
    wait_for(lambda: (_healthz(url) or {}).get("code") == 200, 10, what="healthy again once space is back")
    rig.emulator.clock.advance(intake.TROUBLE_RECHECK + 1)   # the entry intake could not record is looked at again
    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    assert rig.emulator.records.completed(sidecar["sha256"]) == 1
    assert rig.stop() == 0


def test_a_worker_that_dies_holds_its_item_back_longer_each_time_and_status_says_why(
        make_rig, tmp_path, monkeypatch) -> None:
    rig: Rig = make_rig(overrides={"upload.retry_initial": 1, "upload.retry_max": 2})
    broken = threading.Event()
    broken.set()
    calls: list[float] = []
    original = pipeline.Pipeline.run

    def run(self: pipeline.Pipeline, item_id: int, *known: Any) -> Any:
        if broken.is_set():
            calls.append(time.monotonic())
            raise RuntimeError("a bug outside the trip's own guard")
        return original(self, item_id, *known)

    monkeypatch.setattr(pipeline.Pipeline, "run", run)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=90_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: calls, 15, what="a first worker crash")

    def held_row() -> dict[str, Any] | None:
        rows = report.collect(rig.settings, rig.emulator.clock.now())["items"]
        return next((row for row in rows if row["detail"] and "RuntimeError" in row["detail"]), None)

    row = wait_for(held_row, 5, what="status naming the crash")
    assert "the worker stopped on an error (RuntimeError: a bug outside the trip's own guard)" in row["detail"]
    assert row["next_attempt_at"] is not None and row["state"] == "queued"
    time.sleep(3.5)
    # Held 1 s, then 2 s, then 2 s: about three tries in 3.5 s, where a retry on every pass of the loop
    # (4 a second) would have made more than a dozen.
    assert 2 <= len(calls) <= 4, [round(at - calls[0], 2) for at in calls]
    gaps = [later - earlier for earlier, later in zip(calls, calls[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps

    broken.clear()
    sidecar = rig.wait_sidecar("alice", "clip.mp4", timeout=15)
    assert rig.emulator.records.completed(sidecar["sha256"]) == 1
