"""Intake of a backlog: each inbox listed once per pass whatever its size, the items of a pass committed
together (and taken in again, once, when that commit is lost), and the real daemon starting uploads and
answering /healthz while thousands of files present at start are still being taken in."""

from __future__ import annotations

import os
import queue
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.emulator_fixture import running_emulator
from tests.harness import Rig, wait_for
from tests.test_backbone import INIT_ENDPOINTS
from watchfolder.core.errors import StoreError
from watchfolder.emulator.clock import OffsetClock
from watchfolder.intake import intake as intake_module
from watchfolder.intake.watcher import WatchEvent
from watchfolder.logs import get_logger
from watchfolder.media import samples
from watchfolder.ops import metrics
from watchfolder.ops.health import HealthMonitor
from watchfolder.store.store import Store


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with running_emulator(clock=OffsetClock()) as emulator:
        made = Rig(tmp_path / "rig", emulator, overrides={"metrics.listen": "127.0.0.1:0"})
        made.folder("alice", "inbox").mkdir(parents=True)
        try:
            yield made
        finally:
            made.stop()


def fill(inbox: Path, count: int, template: Path) -> list[str]:
    """``count`` small distinct MP4s (one template, a different stamp in its last 8 bytes); their names."""
    body = bytearray(samples.write_mp4(template, size=8192, seed=77).read_bytes())
    names = []
    for index in range(count):
        body[-8:] = index.to_bytes(8, "big")
        name = f"clip-{index:05d}.mp4"
        (inbox / name).write_bytes(body)
        names.append(name)
    return names


def intake_for(rig: Rig, store: Store, names: list[str]) -> intake_module.Intake:
    """An intake with one watcher event per name waiting (what the start's scan posts)."""
    events: queue.Queue[WatchEvent] = queue.Queue()
    for name in names:
        events.put(WatchEvent("alice", name))
    return intake_module.Intake(rig.settings, store, events, log=get_logger())


def recorded(store: Store) -> dict[str, int]:
    """{name: how many items} of alice."""
    rows = store.conn.execute("SELECT name, COUNT(*) FROM items WHERE account = 'alice' GROUP BY name")
    return {str(name): int(count) for name, count in rows}


def test_a_pass_lists_the_inbox_once_however_many_files_it_takes_in(rig, tmp_path, monkeypatch):
    inbox = rig.folder("alice", "inbox")
    names = fill(inbox, 300, tmp_path / "template.mp4")
    for index in (7, 150, 299):
        (inbox / f"clip-{index:05d}.yaml").write_text(f"title: number {index}\n", encoding="utf-8")
        names.append(f"clip-{index:05d}.yaml")
    listings: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: Any = ".") -> Any:
        listings.append(os.fspath(path))
        return real_scandir(path)

    store = Store(rig.state_dir)
    try:
        intake = intake_for(rig, store, names)
        intake.slice_seconds = 600   # one pass takes every settled file in
        now = time.time()
        intake.step(now)             # seen; settling
        assert intake.step(now + 10) == 1   # the first of a backlog is recorded at once, its upload can start
        monkeypatch.setattr(os, "scandir", counting_scandir)
        taken = intake.step(now + 10)
        monkeypatch.undo()
        assert taken == 299
        assert listings.count(os.fspath(inbox)) == 1, f"{listings.count(os.fspath(inbox))} listings of the inbox"
        titles = {row[0]: row[1] for row in store.conn.execute("SELECT name, json_extract(post_info, '$.title')"
                                                                " FROM items")}
        assert titles["clip-00150.mp4"] == "number 150" and titles["clip-00299.mp4"] == "number 299"
        assert titles["clip-00008.mp4"] is None
    finally:
        store.close()


def test_a_settings_file_that_lands_after_its_media_was_first_seen_is_used(rig, tmp_path):
    """The inbox is listed in the pass that takes one file in while another is still settling; the second
    one's settings file lands after that listing, and is still applied."""
    inbox = rig.folder("alice", "inbox")
    first, second = fill(inbox, 2, tmp_path / "template.mp4")
    store = Store(rig.state_dir)
    try:
        intake = intake_for(rig, store, [first])
        now = time.time()
        intake.step(now)
        intake.events.put(WatchEvent("alice", second))
        assert intake.step(now + 10) == 1          # the first taken in (the inbox listed); the second seen
        (inbox / "clip-00001.yml").write_text("title: late but used\n", encoding="utf-8")
        intake.events.put(WatchEvent("alice", "clip-00001.yml"))
        for turn in range(2, 6):
            intake.step(now + 10 * turn)
        (post_info,) = store.conn.execute("SELECT json_extract(post_info, '$.title') FROM items"
                                          " WHERE name = ?", (second,)).fetchone()
        assert post_info == "late but used"
    finally:
        store.close()


def test_a_pass_whose_commit_is_lost_is_taken_in_again_once(rig, tmp_path):
    """The items of a pass are committed together. When that commit fails (another process holds the
    database), nothing is recorded and the files are taken in on a later pass; a restart after the loss
    (a crash) takes each in exactly once, and a second restart adds nothing."""
    inbox = rig.folder("alice", "inbox")
    names = fill(inbox, 40, tmp_path / "template.mp4")
    store = Store(rig.state_dir)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    try:
        store.conn.execute("PRAGMA busy_timeout=50")
        intake = intake_for(rig, store, names)
        intake.slice_seconds = 600
        now = time.time()
        intake.step(now)
        assert intake.step(now + 10) == 1   # the first of the backlog, at once
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="busy"):
            intake.step(now + 10)           # the other 39, in one commit that fails
        blocker.execute("ROLLBACK")
        assert recorded(store) == {names[0]: 1}
        assert intake.next_wakeup() == now + 10 + intake_module.STORE_RECHECK   # kept, tried again
        assert intake.step(now + 10 + intake_module.STORE_RECHECK) == 39
        assert recorded(store) == dict.fromkeys(names, 1)
    finally:
        blocker.close()
        store.close()

    for turn in range(2):   # restarts: the start's scan posts every name again
        store = Store(rig.state_dir)
        try:
            intake = intake_for(rig, store, names)
            intake.slice_seconds = 600
            assert intake.step(now + 100 * (turn + 1)) + intake.step(now + 100 * (turn + 1) + 10) == 0
            assert recorded(store) == dict.fromkeys(names, 1)
        finally:
            store.close()


def test_with_3000_files_at_start_the_first_init_goes_out_and_healthz_answers_while_intake_goes_on(rig, tmp_path):
    names = fill(rig.folder("alice", "inbox"), 3000, tmp_path / "template.mp4")
    monitor = HealthMonitor(loop_stale_seconds=3.0)
    server = metrics.MetricsServer(rig.settings, monitor)
    rig.start([monitor, server], wait=False)
    healthz = f"http://127.0.0.1:{server.port}/healthz"

    def inits() -> int:
        return len([r for r in rig.emulator.records.requests if r.endpoint in INIT_ENDPOINTS])

    wait_for(lambda: inits() > 0, 60, interval=0.02, what="the first init")
    reader = Store(rig.state_dir, readonly=True)
    try:
        at_first_init = len(recorded(reader))
        assert at_first_init < len(names), "the first init went out only after every file was recorded"
        answers = []
        deadline = time.monotonic() + 120
        while len(recorded(reader)) < len(names) and time.monotonic() < deadline:
            answer = requests.get(healthz, timeout=5)
            answers.append((answer.status_code, answer.json().get("problems")))
            time.sleep(0.1)
        assert len(recorded(reader)) == len(names), "not every file was taken in within 120 s"
    finally:
        reader.close()
    assert answers, "intake ended before /healthz was asked"
    assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:3]


def test_status_lists_a_few_settling_files_per_account_and_counts_the_rest_but_every_notice(rig, tmp_path):
    inbox = rig.folder("alice", "inbox")
    names = fill(inbox, 50, tmp_path / "template.mp4")
    os.symlink(tmp_path / "template.mp4", inbox / "link.mp4")
    store = Store(rig.state_dir)
    try:
        intake = intake_for(rig, store, [*names, "link.mp4"])
        intake.step(time.time())   # all seen once: settling
        rows = intake.waiting_entries(time.time())
    finally:
        store.close()
    settling = [row for row in rows if row["note"].startswith("being written or settling")]
    assert len(settling) == intake_module.SETTLING_SHOWN
    assert {"account": "alice", "name": "",
            "note": f"and {50 - intake_module.SETTLING_SHOWN} more files settling or waiting to be taken in"} in rows
    assert [row["name"] for row in rows if "symlink" in row["note"]] == ["link.mp4"]
