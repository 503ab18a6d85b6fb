"""The transition table, walked whole through the real Store: every legal (state, event) gives the
documented state, every other pair is refused naming both, and the guarded fields move only by event."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from watchfolder.core.errors import StoreError
from watchfolder.core.model import State
from watchfolder.core.transitions import EVENT_FIELDS, GUARDED_FIELDS, QUIET, TRANSITIONS, UPLOAD_RESET, Event
from watchfolder.store.store import Store

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
ALL_PAIRS = list(itertools.product(State, Event))
LEGAL = sorted(TRANSITIONS.items())
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]


def pair_id(pair: object) -> str:
    state, event = pair if isinstance(pair, tuple) else (pair, "")
    return f"{state}-{event}"


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path)
    yield opened
    opened.close()


@pytest.mark.parametrize(("pair", "new"), LEGAL, ids=[pair_id(pair) for pair, _ in LEGAL])
def test_every_legal_pair_gives_the_documented_state(store, pair, new):
    state, event = pair
    item = store.add_item(account="alice", name="clip.mp4", kind="video", now=1.0, state=state)
    rows = len(store.history(item.id))

    after = store.apply(item, event, now=2.0, note="why")

    assert after.state is new
    assert store.get(item.id).state is new
    history = store.history(item.id)
    if pair in QUIET:
        assert len(history) == rows, "progress inside a state adds no history row"
    else:
        assert history[-1] == {"state": str(new), "at": 2.0, "detail": "why"}


@pytest.mark.parametrize("pair", ILLEGAL, ids=[pair_id(pair) for pair in ILLEGAL])
def test_every_other_pair_is_refused_naming_the_state_and_the_event(store, pair):
    state, event = pair
    item = store.add_item(account="alice", name="clip.mp4", kind="video", now=1.0, state=state)
    rows = store.history(item.id)

    with pytest.raises(StoreError, match=rf"event {event} is not allowed in state {state}\b"):
        store.apply(item, event, now=2.0)

    assert store.get(item.id).state is state
    assert store.history(item.id) == rows, "no event row for a refusal"


def test_the_table_leaves_no_way_out_of_cancelled_and_every_open_state_can_fail_or_wait():
    assert not [pair for pair in TRANSITIONS if pair[0] is State.CANCELLED]
    for state in (State.QUEUED, State.WAITING, State.UPLOADING, State.PROCESSING):
        assert TRANSITIONS[(state, Event.FAILED)] is State.FAILED
        assert TRANSITIONS[(state, Event.PARKED)] is State.WAITING
    assert {new for (state, _), new in TRANSITIONS.items() if state.finished} <= {State.DONE, State.FAILED,
                                                                                   State.CANCELLED}


@pytest.mark.parametrize("field", sorted(GUARDED_FIELDS))
def test_a_plain_update_of_a_guarded_field_is_refused(store, field):
    item = store.add_item(account="alice", name="clip.mp4", kind="video", now=1.0)

    with pytest.raises(StoreError, match=f"{field} change only through an event"):
        store.update(item.id, now=2.0, **{field: "processing"})

    assert store.get(item.id) == item


def test_an_event_may_set_only_the_guarded_fields_it_owns(store):
    item = store.add_item(account="alice", name="clip.mp4", kind="video", now=1.0, state=State.DONE)

    with pytest.raises(StoreError, match="event publish_complete is not allowed in state done"):
        store.apply(item, Event.PUBLISH_COMPLETE, now=2.0)
    with pytest.raises(StoreError, match="event file_missing may not set folder"):
        store.apply(item, Event.FILE_MISSING, now=2.0, moved=1, folder="done")
    moved = store.apply(item, Event.MOVED, now=2.0, moved=1, folder="done")

    assert (moved.state, moved.folder, moved.moved) == (State.DONE, "done", 1)
    assert all(fields <= GUARDED_FIELDS - {"state"} for fields in EVENT_FIELDS.values())


def test_the_upload_reset_leaves_nothing_of_the_abandoned_task(store):
    item = store.add_item(account="alice", name="clip.mp4", kind="video", now=1.0, state=State.UPLOADING,
                          size=100)
    item = store.apply(item, Event.INIT_ANSWERED, now=2.0, publish_id="v_inbox_file~1", upload_url="http://u",
                       upload_expires_at=99.0, uploaded_bytes=60, chunk_size=50, chunk_count=2, staged=["a.jpg"],
                       status="PROCESSING_UPLOAD")

    reset = store.apply(item, Event.REINIT, now=3.0, **UPLOAD_RESET)

    assert (reset.publish_id, reset.upload_url, reset.upload_expires_at, reset.uploaded_bytes, reset.chunk_size,
            reset.chunk_count, reset.staged, reset.status, reset.init_started_at) == (
        None, None, None, 0, None, None, "[]", None, None)


def test_the_architecture_doc_shows_the_same_table():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## The transition table", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \|", section, flags=re.MULTILINE)

    assert {(State(s), Event(e)): State(n) for s, e, n in rows} == dict(TRANSITIONS)
    assert len(rows) == len(TRANSITIONS)
