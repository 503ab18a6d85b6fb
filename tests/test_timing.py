"""The timing promises of interface.md, on the emulator with the shipped retry defaults."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.emulator_fixture import running_emulator
from tests.harness import Rig, wait_for
from tests.test_scheduler import make_videos
from watchfolder.emulator.clock import OffsetClock
from watchfolder.ops import report

DEFAULT_RETRIES = {"upload.retry_initial": "10s", "upload.retry_max": "12h"}


def test_one_500_on_the_init_a_chunk_and_a_status_call_still_ends_done_within_30_s(make_rig, tmp_path):
    rig: Rig = make_rig(overrides={**DEFAULT_RETRIES, "upload.chunk_size": 5_242_880})
    emulator = rig.emulator
    emulator.faults.fail_next("inbox_init", kind="5xx")
    emulator.faults.fail_next("upload", kind="5xx")
    emulator.faults.fail_next("status", kind="5xx")
    (source,) = make_videos(tmp_path / "src", 1, size=11_000_000)
    rig.start()
    started = time.monotonic()
    rig.drop("alice", source.name, source)
    sidecar = rig.wait_sidecar("alice", source.name, timeout=30)
    took = time.monotonic() - started
    assert sidecar["result"] == "done" and took < 30
    assert not any(emulator.faults.pending().values()), "every injected fault was met"
    assert os.listdir(rig.folder("alice", "failed")) == []
    puts = [r for r in emulator.records.requests if r.endpoint == "upload"]
    assert [r.http_status for r in puts][:2] == [500, 206]   # the failed chunk went again, no new init
    assert len([r for r in emulator.records.requests if r.endpoint == "inbox_init" and r.http_status == 200]) == 1


def test_four_videos_with_15_s_of_processing_each_are_done_in_well_under_a_minute(tmp_path):
    with running_emulator(clock=OffsetClock(), processing_seconds=15) as emulator:
        rig = Rig(tmp_path / "rig", emulator, overrides={"upload.status_poll_seconds": 3,
                                                         "tiktok.status_per_minute": 30})
        sources = make_videos(tmp_path / "src", 4)
        rig.start()
        started = time.monotonic()
        for path in sources:
            rig.drop("alice", path.name, path)
        for path in sources:
            rig.wait_sidecar("alice", path.name, timeout=60)
        took = time.monotonic() - started
        rig.stop()
    assert took < 30, f"four items took {took:.1f} s: TikTok's processing of each must overlap the next upload"


def test_six_accounts_with_items_in_processing_never_stop_a_seventh_from_uploading(tmp_path):
    names = [f"acct{index}" for index in range(7)]
    with running_emulator(clock=OffsetClock(), processing_seconds=40) as emulator:
        rig = Rig(tmp_path / "rig", emulator, accounts={name: {"mode": "inbox"} for name in names},
                  overrides={"upload.status_poll_seconds": 3, "tiktok.status_per_minute": 30})
        rig.start()
        for name in names[:6]:
            for path in make_videos(tmp_path / name, 2, prefix=name):
                rig.drop(name, path.name, path)
        wait_for(lambda: _states(rig, names[:6]).count("processing") >= 6, 30, what="six accounts processing")
        (late,) = make_videos(tmp_path / "late", 1, prefix="late")
        rig.drop(names[6], late.name, late)
        wait_for(lambda: _states(rig, names[6:]) == ["processing"], 15, what="the seventh account's upload")
        assert _states(rig, names[:6]).count("processing") >= 6, "the others are still in TikTok's processing"
        rig.stop()


def _states(rig: Rig, accounts: list[str]) -> list[str]:
    data = report.collect(rig.settings, rig.emulator.clock.now())
    return [item["state"] for item in data["items"] if item["account"] in accounts]


def test_intake_takes_a_backlog_in_slices_and_leaves_the_rest_due(tmp_path):
    """A pass of intake is bounded in time (at least one entry), so the main loop keeps scheduling, answering
    health and pinging the watchdog while a large backlog is taken in; find_open is answered from an index."""
    import queue as queue_module

    from watchfolder.intake import intake as intake_module
    from watchfolder.intake.watcher import WatchEvent
    from watchfolder.logs import get_logger
    from watchfolder.store.store import Store

    with running_emulator(clock=OffsetClock()) as emulator:
        rig = Rig(tmp_path / "rig", emulator)
        inbox = rig.folder("alice", "inbox")
        inbox.mkdir(parents=True)
        sources = make_videos(tmp_path / "src", 5)
        events: queue_module.Queue[WatchEvent] = queue_module.Queue()
        for path in sources:
            path.rename(inbox / path.name)
            events.put(WatchEvent("alice", path.name))
        store = Store(rig.state_dir)
        try:
            intake = intake_module.Intake(rig.settings, store, events, log=get_logger())
            intake.slice_seconds = 0   # each pass looks at one entry
            now = time.time() + 60
            recorded = []
            for turn in range(30):
                recorded.append(intake.step(now + turn))
                due = intake.next_wakeup()
                if recorded[-1] and sum(recorded) < 5:
                    assert due is not None and due <= now + turn, "what is left stays due for the next pass"
            assert sum(recorded) == 5 and max(recorded) == 1, recorded
            plan = " ".join(row[3] for row in store.conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM items WHERE account = ? AND name = ? AND folder IN"
                " ('inbox', 'processing') AND state NOT IN ('done', 'failed', 'cancelled')", ("alice", "x")))
            assert "items_account_name" in plan, plan
        finally:
            store.close()


def send_one_video(make_rig: Any, tmp_path: Path) -> Rig:
    """Run the daemon through one small video's happy path, from the drop to its sidecar in done/."""
    rig: Rig = make_rig()
    (source,) = make_videos(tmp_path / "src", 1)
    rig.start()
    rig.drop("alice", source.name, source)
    rig.wait_sidecar("alice", source.name)
    rig.stop()
    return rig


def test_the_happy_path_makes_at_most_three_durable_commits_per_item(make_rig, tmp_path, monkeypatch):
    """The commit plan: the intent before the init, TikTok's answer before the first byte, the outcome
    before the move are fsynced; every other write of the trip is a NORMAL commit in WAL."""
    from contextlib import contextmanager

    from watchfolder.store.store import Store

    durable: list[str] = []
    original = Store.transaction

    @contextmanager
    def transaction(self: Store, *, durable_commit: bool = False, **options: bool):
        wanted = options.get("durable", durable_commit)
        if wanted:
            durable.append(str(self.conn.execute("PRAGMA synchronous").fetchone()[0]))
        with original(self, durable=wanted) as conn:
            if wanted:
                durable[-1] = str(conn.execute("PRAGMA synchronous").fetchone()[0])
            yield conn

    monkeypatch.setattr(Store, "transaction", transaction)
    rig = send_one_video(make_rig, tmp_path)
    assert len(durable) == 3, durable   # init intent, init answer, outcome (one chunk: no progress commit)
    assert set(durable) == {"2"}, "a durable commit runs with synchronous=FULL (2)"
    store = Store(rig.state_dir)
    try:
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1   # NORMAL for the rest
    finally:
        store.close()


def test_the_happy_path_commits_each_step_once_and_reads_its_row_by_id_once(make_rig, tmp_path, monkeypatch):
    """Seen from SQLite's side (a trace of every statement on the daemon's connections): one small video
    makes nine commits that write its row (intake's, then its dedupe key, claim, init intent, init answer,
    the change time after its move, uploaded with its hash, outcome, moved) and its row is read by id once (the
    finisher's fresh look under its lock); every other step carries the row it wrote or the scheduler read."""
    import re
    import threading

    from watchfolder.store.store import Store

    guard = threading.Lock()
    commits: list[list[str]] = []       # the statements of each committed transaction that wrote an item
    reads: list[str] = []
    original = Store.__init__

    def traced(self: Store, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)   # type: ignore[arg-type]
        open_statements: list[str] = []

        def trace(sql: str) -> None:
            words = " ".join(sql.split())
            with guard:
                if words.startswith("BEGIN"):
                    open_statements.clear()
                elif words == "COMMIT":
                    if any(re.match(r"(INSERT INTO|UPDATE) items ", s) for s in open_statements):
                        commits.append(list(open_statements))
                elif re.match(r"SELECT \* FROM items WHERE id = ", words):
                    reads.append(words)
                else:
                    open_statements.append(words)

        self.conn.set_trace_callback(trace)

    monkeypatch.setattr(Store, "__init__", traced)
    send_one_video(make_rig, tmp_path)
    with guard:
        assert len(commits) == 9, "\n".join(" | ".join(c)[:200] for c in commits)
        assert len(reads) == 1, reads
