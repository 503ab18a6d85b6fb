"""The state database: compare-and-set transitions, event history, migrations, ledger."""

from __future__ import annotations

import sqlite3

import pytest

from watchfolder.core import machine
from watchfolder.core.errors import StoreError
from watchfolder.core.model import State
from watchfolder.core.transitions import Event
from watchfolder.store.store import MIGRATIONS, Store


def test_transition_is_compare_and_set_and_logs_an_event(tmp_path):
    store = Store(tmp_path)
    item = store.add_item(account="alice", name="a.mp4", kind="video", now=100.0, size=10)
    moved = store.apply(item, Event.CLAIMED, now=101.0)
    assert moved.state is State.UPLOADING
    with pytest.raises(StoreError, match="was uploading, not queued"):
        store.apply(item, Event.CLAIMED, now=102.0)   # a second worker holding the same queued item
    assert [e["state"] for e in store.history(item.id)] == ["detected", "queued", "uploading"]


def test_a_second_connection_sees_committed_progress(tmp_path):
    writer, reader = Store(tmp_path), Store(tmp_path, readonly=True)
    item = writer.add_item(account="alice", name="a.mp4", kind="video", now=1.0, size=100)
    item = writer.apply(item, Event.CLAIMED, now=2.0)
    writer.apply(item, Event.INIT_ANSWERED, now=2.0, uploaded_bytes=60, publish_id="v_inbox_file~v2.1")
    seen = reader.get(item.id)
    assert (seen.uploaded_bytes, seen.publish_id) == (60, "v_inbox_file~v2.1")
    assert reader.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_run_once_and_are_recorded(tmp_path):
    Store(tmp_path).close()
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "watchfolder.sqlite3")
    assert conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)


def test_next_due_prefers_in_flight_then_publish_at_then_first_detected(tmp_path):
    store = Store(tmp_path)
    first = store.add_item(account="a", name="1.mp4", kind="video", now=10.0)
    store.add_item(account="a", name="2.mp4", kind="video", now=20.0)
    later = store.add_item(account="a", name="3.mp4", kind="video", now=30.0, state=State.WAITING,
                           next_attempt_at=500.0, publish_at=500.0)
    assert store.next_due("a", now=100.0).id == first.id
    assert store.next_due("a", now=600.0).id == later.id   # a due publish_at goes first
    store.apply(first, Event.CLAIMED, now=601.0)
    assert store.next_due("a", now=602.0).id == first.id   # an upload under way is finished first
    assert store.next_due("b", now=602.0) is None


def test_same_key_finds_the_earlier_pending_or_done_items_then_later_ones_that_went(tmp_path):
    store = Store(tmp_path)
    first = store.add_item(account="a", name="1.mp4", kind="video", now=1.0, quick_key="k")
    second = store.add_item(account="a", name="2.mp4", kind="video", now=2.0, quick_key="k")
    other = store.add_item(account="b", name="1.mp4", kind="video", now=3.0, quick_key="k")
    third = store.add_item(account="a", name="3.mp4", kind="video", now=4.0, quick_key="k")
    store.add_item(account="a", name="4.mp4", kind="video", now=5.0, quick_key="not k")
    assert [i.id for i in store.same_key(second)] == [first.id]
    assert store.same_key(first) == [] and store.same_key(other) == []
    store.apply(third, Event.CLAIMED, now=6.0)   # taken in later, but on its way to TikTok
    assert [i.id for i in store.same_key(second)] == [first.id, third.id]
    store.apply(first, Event.FAILED, now=7.0)
    assert [i.id for i in store.same_key(second)] == [third.id]


def test_same_key_offers_items_recorded_before_keys_by_size_and_known_hash(tmp_path):
    store = Store(tmp_path)
    old = store.add_item(account="a", name="old.mp4", kind="video", now=1.0, size=100, sha256="x")
    store.add_item(account="a", name="other.mp4", kind="video", now=1.0, size=101, sha256="y")
    store.add_item(account="a", name="unhashed.mp4", kind="video", now=1.0, size=100)
    new = store.add_item(account="a", name="new.mp4", kind="video", now=2.0, size=100, quick_key="k")
    assert [i.id for i in store.same_key(new)] == [old.id]


def test_unknown_fields_are_refused(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(StoreError, match="unknown item fields"):
        store.add_item(account="a", name="x", kind="video", now=1.0, acess_token="oops")


def test_integrity_check_is_ok_on_a_fresh_store(tmp_path):
    assert Store(tmp_path).integrity_check() == "ok"


def test_the_ledger_keeps_one_day_of_calls_and_no_more(tmp_path):
    store = Store(tmp_path)
    minute = 60.0
    for step in range(3 * 24 * 60):   # three days of one status call a minute
        store.ledger_add("alice", "status", step * minute)
    store.ledger_add("alice", "post", 3 * 86400.0)
    end = 3 * 86400.0

    rows = store.conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    assert rows <= 24 * 60 + 2, "older than a day is forgotten"
    assert len(store.ledger_times("alice", "status", end - 86400)) == 24 * 60 - 1
    assert store.ledger_times("alice", "post", end - 86400) == [end]


def test_an_init_answered_late_counts_from_its_answer_so_the_window_never_undercounts(tmp_path):
    # Decided at 100 s, on the wire for 20 s (a slow connect): TikTok counted it when it arrived, so a
    # window counted from 100 s would let the next init in 20 s too early.
    store = Store(tmp_path)
    item = store.apply(store.add_item(account="alice", name="a.mp4", kind="video", now=99.0, size=10),
                       Event.CLAIMED, now=99.0)
    item = store.apply(item, Event.INIT_SENT, now=100.0, ledger=[("init", 100.0)])
    store.apply(item, Event.INIT_ANSWERED, now=120.0, publish_id="v_inbox_file~v2.1", ledger=[("draft", 120.0)],
                retime=[("init", 100.0, 120.0)])
    assert store.ledger_times("alice", "init", 0.0) == [120.0]
    assert store.ledger_times("alice", "draft", 0.0) == [120.0]
    assert machine.rate_allows_at(store.ledger_times("alice", "init", 0.0), 1, now=121.0) == 180.5


def test_the_next_wake_up_of_a_large_backlog_is_read_from_the_items_that_have_a_next_try(tmp_path) -> None:
    """10,000 queued items, a few with a next try: the earliest one still in the future (of a configured
    account, open) comes from the partial index in time order, not from a walk over every queued item."""
    from watchfolder.store import queries, schedule

    store = Store(tmp_path)
    try:
        ids = store.add_items([{"account": f"acc{n % 10}", "name": f"clip-{n:05d}.mp4", "kind": "video",
                                "now": 1000.0 + n} for n in range(10_000)])
        queries.hold_item(store, ids[10], 7000.0, "held", 1000.0)     # acc0
        queries.hold_item(store, ids[21], 6000.0, "held", 1000.0)     # acc1, not asked about below
        queries.hold_item(store, ids[32], 8000.0, "held", 1000.0)     # acc2
        queries.hold_item(store, ids[43], 4000.0, "held", 1000.0)     # acc3, already due at 5000
        ran: list[str] = []
        store.conn.set_trace_callback(ran.append)   # the statement as run, its values bound
        assert schedule.next_due_at(store, ["acc0", "acc2", "acc3"], 5000.0) == 7000.0
        store.conn.set_trace_callback(None)
        assert schedule.next_due_at(store, ["acc1"], 5000.0) == 6000.0
        assert schedule.next_due_at(store, ["acc3"], 5000.0) is None
        plan = " ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + ran[-1]))
        assert "items_open_due" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        store.close()
