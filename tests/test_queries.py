"""The named queries behind status, /metrics and the main loop: right numbers, and cheap ones.

Cheap means SQLite answers from the (account, state) index instead of reading every item ever
recorded: the plans are read with EXPLAIN QUERY PLAN on the statements the queries really ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from watchfolder.core.model import State
from watchfolder.store import queries
from watchfolder.store.store import Store

ACCOUNTS = ["alice", "bob"]


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path)
    for number in range(3):
        store.add_item(account="alice", name=f"{number}.mp4", kind="video", now=100.0 + number)
    store.add_item(account="alice", name="bad.mp4", kind="video", now=50.0, state=State.FAILED)
    store.add_item(account="bob", name="old.mp4", kind="video", now=10.0, state=State.FAILED)
    store.add_item(account="gone", name="x.mp4", kind="video", now=100.0)   # an account no longer configured
    return store


def test_counts_by_state_are_per_configured_account_with_zeros(store: Store) -> None:
    counts = queries.counts_by_state(store, ACCOUNTS)
    assert counts[("alice", "queued")] == 3 and counts[("alice", "failed")] == 1
    assert counts[("bob", "failed")] == 1 and counts[("bob", "queued")] == 0
    assert ("gone", "queued") not in counts
    assert set(counts) == {(account, str(state)) for account in ACCOUNTS for state in State}


def test_finished_today_counts_only_what_finished_since(store: Store) -> None:
    assert queries.finished_counts_since(store, ACCOUNTS, since=40.0) == {
        ("alice", "done"): 0, ("alice", "failed"): 1, ("bob", "done"): 0, ("bob", "failed"): 0}


def test_item_lists_are_bounded_and_in_order(store: Store) -> None:
    assert [i.name for i in queries.open_items(store, ACCOUNTS)] == ["0.mp4", "1.mp4", "2.mp4"]
    assert [i.name for i in queries.recently_finished(store, ACCOUNTS, since=0.0, limit=1)] == ["bad.mp4"]
    assert [i.name for i in queries.recently_finished(store, ACCOUNTS, since=0.0, limit=5)] == ["old.mp4", "bad.mp4"]
    bad = next(i for i in store.items(account="alice") if i.name == "bad.mp4")
    assert queries.refused_in_inbox(store, ["alice"]) == [bad.id] and queries.refused_in_inbox(store, ["carol"]) == []


def test_a_held_item_keeps_its_state_and_says_why(store: Store) -> None:
    item = queries.open_items(store, ["alice"])[0]
    queries.hold_item(store, item.id, until=500.0, detail="the worker stopped on an error", now=200.0)
    held = store.get(item.id)
    assert (held.state, held.next_attempt_at, held.detail) == (State.QUEUED, 500.0, "the worker stopped on an error")
    assert store.next_due("alice", now=300.0).id != item.id


def _plans(store: Store, run: Callable[[], Any]) -> list[str]:
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        store.conn.set_trace_callback(None)
    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert selects
    return [" / ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}")) for sql in selects]


@pytest.mark.parametrize("query", [
    lambda s: queries.refused_in_inbox(s, ACCOUNTS),
    lambda s: queries.counts_by_state(s, ACCOUNTS, queries.OPEN_STATES),
    lambda s: queries.open_items(s, ACCOUNTS, (State.UPLOADING,)),
    lambda s: queries.finished_counts_since(s, ACCOUNTS, 0.0),
], ids=["refused_in_inbox", "counts_by_state", "open_items", "finished_counts_since"])
def test_the_queries_status_and_the_loop_run_use_the_account_state_index(store: Store, query) -> None:
    for plan in _plans(store, lambda: query(store)):
        assert "USING" in plan and "INDEX items_account_state" in plan, plan
        assert "SCAN items" not in plan.replace("USING", ""), plan
