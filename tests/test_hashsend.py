"""One read per byte: a video sent in chunks is hashed from the very blocks sent, and the dedupe before
its init is made on a cheap key (size, first and last MiB), the whole file read only when that key
matches another item. The sha256 must always equal a full read of the file: fresh, resumed after a
stop or a crash, realigned by a 416, a chunk sent again after a dropped connection."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import Rig, wait_for
from tests.test_recovery import (
    BIG,
    CHUNK,
    Task,
    finished,
    inits,
    item_row,
    items_in,
    puts,
    ranges,
    seed_item,
    video,
)
from watchfolder import logs
from watchfolder.core.model import State
from watchfolder.daemon import dedupe, pipeline
from watchfolder.daemon.contenthash import EDGE, RunningHash, quick_key
from watchfolder.daemon.itemfile import ItemFile
from watchfolder.daemon.pacing import Parked
from watchfolder.media import samples
from watchfolder.openfile import OpenMedia
from watchfolder.store.store import Store


@pytest.fixture
def rig(make_rig: Any) -> Rig:
    """The recovery tests' rig: 5,242,880-byte chunks, so a BIG video goes in three."""
    rig: Rig = make_rig(overrides={"upload.chunk_size": CHUNK})
    return rig.with_folders()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def info_logs() -> None:
    """Info events reach ``capture_logs`` (the suite's own level is warning)."""
    logs.configure("info", json=True, stream=io.StringIO())


def hashed(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "content_hashed"]


# ---- the running hash and the key, alone ----------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=1, max_size=40_000), chunk=st.integers(1, 9_000),
       plan=st.lists(st.tuples(st.sampled_from(["send", "fail", "jump", "restart"]), st.floats(0, 1)),
                     max_size=30))
def test_the_running_hash_equals_a_full_read_whatever_the_chunks_failures_rewinds_and_restarts(
        tmp_path_factory: Any, data: bytes, chunk: int, plan: list[tuple[str, float]]) -> None:
    """Chunks acknowledged, chunks broken off after some bytes, 416s that move the offset either way, and
    restarts that start from an empty hash: at the end it is always hashlib.sha256 of the whole file."""
    path = tmp_path_factory.mktemp("h") / "f"
    path.write_bytes(data)
    starts = list(range(0, len(data), chunk))
    fd = os.open(path, os.O_RDONLY)
    try:
        running, acknowledged = RunningHash(), 0
        for what, fraction in plan:
            if what == "restart":     # the daemon died: the next start has only the acknowledged offset
                running = RunningHash()
                continue
            if what == "jump":        # a 416 says TikTok holds up to another chunk boundary
                acknowledged = starts[int(fraction * (len(starts) - 1))]
                continue
            first = acknowledged
            size = min(chunk, len(data) - first)
            if size == 0:
                continue
            running.at(first, fd)
            sent = size if what == "send" else int(fraction * size)
            for offset in range(first, first + sent, 1000):   # send_body's blocks, smaller
                running.update(data[offset:min(offset + 1000, first + sent)])
            if what == "send":
                acknowledged = first + size
        assert running.finish(len(data), fd) == hashlib.sha256(data).hexdigest()
    finally:
        os.close(fd)


def test_a_fresh_upload_in_order_reads_nothing_more_than_it_sends(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        running = RunningHash()
        for first in range(0, len(data), 7_000):
            running.at(first, fd)
            running.update(data[first:first + 7_000])
        assert running.finish(len(data), fd) == hashlib.sha256(data).hexdigest()
        assert running.caught_up == 0
    finally:
        os.close(fd)


def key_of(path: Path) -> str:
    with OpenMedia.open(path) as media:
        return quick_key(media)


def test_the_key_is_the_size_and_both_ends_so_a_different_middle_needs_the_full_hash(tmp_path: Path) -> None:
    data = bytearray(os.urandom(3 * EDGE))
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "copy").write_bytes(data)
    data[EDGE + 10] ^= 1
    (tmp_path / "middle").write_bytes(data)
    data[-1] ^= 1
    (tmp_path / "end").write_bytes(data)
    (tmp_path / "longer").write_bytes(bytes(data) + b"x")
    assert key_of(tmp_path / "a") == key_of(tmp_path / "copy") == key_of(tmp_path / "middle")
    assert key_of(tmp_path / "end") != key_of(tmp_path / "a")
    assert key_of(tmp_path / "longer") != key_of(tmp_path / "end")
    small = bytearray(os.urandom(2 * EDGE))   # at most 2 MiB: the whole file is in the key
    (tmp_path / "small").write_bytes(small)
    small[EDGE] ^= 1
    (tmp_path / "small2").write_bytes(small)
    assert key_of(tmp_path / "small") != key_of(tmp_path / "small2")


# ---- the daemon, on the emulator ----------------------------------------------------------------

def test_a_fresh_upload_is_hashed_from_the_chunks_it_sends_not_read_before_its_init(
        rig: Rig, tmp_path: Path, info_logs: None) -> None:
    """Three chunks; the sidecar's sha256 is the file's and what TikTok received, and no full read
    happened before the init: the one hash logged is the one built while sending, with nothing caught up."""
    samples.write_mp4(tmp_path / "clip.mp4", size=BIG, seed=21)
    digest = sha256(tmp_path / "clip.mp4")
    with structlog.testing.capture_logs() as seen:   # the daemon's loggers are bound as it starts
        rig.start()
        rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
        sidecar = finished(rig)
    assert sidecar["sha256"] == digest and rig.emulator.records.completed(digest) == 1
    assert ranges(puts(rig.emulator)) == ["0-5242879", "5242880-10485759", "10485760-15999999"]
    assert [(e["read"], e["caught_up"]) for e in hashed(seen)] == [("while_sent", 0)]
    events = [e["event"] for e in seen]
    assert events.index("init_done") < events.index("content_hashed")


def test_an_upload_stopped_between_chunks_resumes_with_the_hash_of_a_full_read(
        rig: Rig, tmp_path: Path, info_logs: None) -> None:
    """The daemon stops while chunk 1 is in flight; the next start sends chunks 2 and 3 and catches the
    hash up over chunk 1 from disk."""
    rig.emulator.faults.fail_next("upload", kind="slow", delay=1.0)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=BIG, seed=22)
    digest = sha256(tmp_path / "clip.mp4")
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: "upload" not in rig.emulator.faults.pending(), 10, what="the first chunk in flight")
    rig.stop()
    assert ranges(puts(rig.emulator)) == ["0-5242879"]
    [item] = items_in(rig, State.UPLOADING)
    assert item.uploaded_bytes == CHUNK and item.sha256 is None
    with structlog.testing.capture_logs() as seen:
        rig.start()
        sidecar = finished(rig)
    assert sidecar["sha256"] == digest and rig.emulator.records.completed(digest) == 1
    assert ranges(puts(rig.emulator)) == ["0-5242879", "5242880-10485759", "10485760-15999999"]
    assert [(e["read"], e["caught_up"]) for e in hashed(seen)] == [("while_sent", CHUNK)]


def test_a_crash_after_two_chunks_resumes_with_the_hash_of_a_full_read(rig: Rig) -> None:
    """Left as a crash leaves it: two chunks acknowledged and committed, the hash not yet known."""
    path = video(rig, "processing", seed=23)
    task = Task(rig, path, chunks_sent=2)
    item_id = seed_item(rig, path, State.UPLOADING, **task.fields(task.acknowledged))
    forget_hash(rig, item_id)
    rig.start()
    sidecar = finished(rig)
    assert sidecar["sha256"] == sha256(rig.folder("alice", "done") / "clip.mp4")
    assert ranges(puts(rig.emulator, task.publish_id))[-1] == "10485760-15999999"
    assert len(inits(rig.emulator)) == 1


def test_a_416_that_moves_the_offset_forward_still_gives_the_hash_of_a_full_read(rig: Rig) -> None:
    """TikTok took chunk 2 before the crash, the item says one: the resend's 416 moves the offset on."""
    path = video(rig, "processing", seed=24)
    task = Task(rig, path, chunks_sent=2)
    item_id = seed_item(rig, path, State.UPLOADING, **task.fields(CHUNK))
    forget_hash(rig, item_id)
    rig.start()
    sidecar = finished(rig)
    assert [r.http_status for r in puts(rig.emulator, task.publish_id)] == [206, 206, 416, 201]
    assert sidecar["sha256"] == sha256(rig.folder("alice", "done") / "clip.mp4")


def test_a_chunk_sent_again_after_a_dropped_connection_is_not_hashed_twice(rig: Rig, tmp_path: Path) -> None:
    """Chunk 2's connection drops after its bytes were fed to the hash; it is sent again and the hash
    goes back to the chunk's first byte."""
    rig.emulator.faults.fail_next("upload", kind="slow", delay=1.0)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=BIG, seed=25)
    digest = sha256(tmp_path / "clip.mp4")
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: "upload" not in rig.emulator.faults.pending(), 10, what="the first chunk in flight")
    rig.emulator.faults.fail_next("upload", kind="drop")
    sidecar = finished(rig)
    assert ranges(puts(rig.emulator))[:3] == ["0-5242879", "5242880-10485759", "5242880-10485759"]
    assert sidecar["sha256"] == digest and rig.emulator.records.completed(digest) == 1


# ---- dedupe before the init ---------------------------------------------------------------------

def test_an_identical_copy_is_a_duplicate_before_any_init(rig: Rig, tmp_path: Path, info_logs: None) -> None:
    samples.write_mp4(tmp_path / "a.mp4", size=BIG, seed=26)
    data = (tmp_path / "a.mp4").read_bytes()
    with structlog.testing.capture_logs() as seen:
        rig.start()
        rig.drop("alice", "a.mp4", tmp_path / "a.mp4")
        rig.wait_sidecar("alice", "a.mp4")
        (tmp_path / "b.mp4").write_bytes(data)
        rig.drop("alice", "b.mp4", tmp_path / "b.mp4")
        failed = rig.wait_sidecar("alice", "b.mp4", "failed")
    assert failed["error"]["code"] == "duplicate" and failed["duplicate_of"] == 1
    assert failed["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(inits(rig.emulator)) == 1
    assert [e.get("why", e["read"]) for e in hashed(seen)] == ["while_sent", "key_matched"]


def test_a_copy_with_the_same_size_and_ends_but_another_middle_is_posted(rig: Rig, tmp_path: Path) -> None:
    rig.start()
    samples.write_mp4(tmp_path / "a.mp4", size=BIG, seed=27)
    data = bytearray((tmp_path / "a.mp4").read_bytes())
    rig.drop("alice", "a.mp4", tmp_path / "a.mp4")
    rig.wait_sidecar("alice", "a.mp4")
    data[BIG // 2] ^= 0xFF
    (tmp_path / "b.mp4").write_bytes(data)
    rig.drop("alice", "b.mp4", tmp_path / "b.mp4")
    sidecar = rig.wait_sidecar("alice", "b.mp4")
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() and "duplicate_of" not in sidecar
    assert len(inits(rig.emulator)) == 2 and rig.emulator.records.completed(sidecar["sha256"]) == 1


def test_a_copy_of_a_video_still_being_sent_is_a_duplicate_read_from_the_others_file(
        make_rig: Any, tmp_path: Path, info_logs: None) -> None:
    """The first video waits in processing/ after its chunk failed again and again, its hash not known
    yet: the copy's key matches, the first's file is read through its own checked open, and the copy is
    the duplicate; the first then finishes once."""
    rig = make_rig(overrides={"upload.chunk_size": CHUNK, "upload.retry_initial": 600, "upload.retry_max": 600})
    rig.emulator.faults.fail_next("upload", n=len(pipeline.CHUNK_RETRY_SECONDS) + 1, kind="5xx")
    samples.write_mp4(tmp_path / "a.mp4", size=BIG, seed=28)
    data = (tmp_path / "a.mp4").read_bytes()
    with structlog.testing.capture_logs() as seen:
        rig.start()
        rig.drop("alice", "a.mp4", tmp_path / "a.mp4")
        wait_for(lambda: items_in(rig, State.WAITING), 30, what="a.mp4 backing off in processing/")
        [first] = items_in(rig, State.WAITING)
        assert first.folder == "processing" and first.sha256 is None
        (tmp_path / "b.mp4").write_bytes(data)
        rig.drop("alice", "b.mp4", tmp_path / "b.mp4")
        failed = rig.wait_sidecar("alice", "b.mp4", "failed")
    assert failed["error"]["code"] == "duplicate" and failed["duplicate_of"] == first.id
    assert sorted(e.get("why", "") for e in hashed(seen)) == ["key_matched", "other_key_matched"], seen
    assert len(inits(rig.emulator)) == 1
    rig.emulator.clock.advance(700)   # past a.mp4's backoff
    sidecar = rig.wait_sidecar("alice", "a.mp4")
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() and len(inits(rig.emulator)) == 1
    assert item_row(rig, first.id).state is State.DONE


def forget_hash(rig: Rig, item_id: int) -> None:
    """The item as the daemon has it mid-upload: its sha256 is built while it is sent, not known yet."""
    store = Store(rig.state_dir)
    try:
        store.update(item_id, now=rig.emulator.clock.now(), sha256=None)
    finally:
        store.close()


def test_a_possible_original_that_cannot_be_read_now_holds_the_copy_without_a_verdict(tmp_path: Path) -> None:
    """The other item's hash is not known and its file is not where its record says (being moved): the
    copy is neither posted nor failed; it waits a few seconds with a reason and looks again."""
    root, store = tmp_path / "root", Store(tmp_path)
    inbox = root / "alice" / "inbox"
    inbox.mkdir(parents=True)
    data = os.urandom(3 * EDGE)
    (inbox / "copy.mp4").write_bytes(data)
    info = (inbox / "copy.mp4").stat()
    key = key_of(inbox / "copy.mp4")
    other = store.add_item(account="alice", name="first.mp4", kind="video", now=1.0, state=State.UPLOADING,
                           folder="processing", size=len(data), quick_key=key, ino=123)
    copy = store.add_item(account="alice", name="copy.mp4", kind="video", now=2.0, size=info.st_size,
                          mtime_ns=info.st_mtime_ns, ctime_ns=info.st_ctime_ns, ino=info.st_ino, dev=info.st_dev,
                          quick_key=key)
    file, stop, log = ItemFile(threading.Event()), threading.Event(), logs.get_logger()
    try:
        with pytest.raises(Parked) as held:
            dedupe.original_of(store, file, copy, inbox / "copy.mp4", root=root, stop=stop, now=10.0, log=log)
        assert held.value.reason == "checking_duplicate" and held.value.until == 10.0 + dedupe.HOLD_SECONDS
        assert f"item {other.id}" in (held.value.detail or "")
        # Once it is where its record says, its own file is read and compared.
        (root / "alice" / "processing").mkdir()
        (root / "alice" / "processing" / "first.mp4").write_bytes(data)
        moved = (root / "alice" / "processing" / "first.mp4").stat()
        store.update(other.id, now=11.0, ino=moved.st_ino, dev=moved.st_dev, mtime_ns=moved.st_mtime_ns,
                     ctime_ns=moved.st_ctime_ns)
        first, copy = dedupe.original_of(store, file, store.get(copy.id), inbox / "copy.mp4", root=root,
                                         stop=stop, now=12.0, log=log)
        assert first is not None and first.id == other.id
        assert copy.sha256 == hashlib.sha256(data).hexdigest()
    finally:
        file.close()
        store.close()
