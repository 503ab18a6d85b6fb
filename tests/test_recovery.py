"""Recovery at start, one write-ahead point at a time.

Each test leaves the state database, the folders and the emulator exactly as a crash at one point of
an item's trip would leave them (the emulator's task made with the real client and chunk uploader),
then starts the daemon and checks that the item is finished once, from where it stopped. A few tests
cut the trip live instead: an init whose answer is lost on the wire, a chunk refused for a moment,
a file changed under the upload.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from watchfolder.core.model import State
from watchfolder.media import samples
from watchfolder.store.store import Store
from watchfolder.tiktok import chunks
from watchfolder.tiktok.client import TikTokClient
from watchfolder.tiktok.upload import ChunkUploader

CHUNK = 5_242_880
BIG = 16_000_000          # three chunks: 0-5242879, 5242880-10485759, 10485760-15999999
INIT_ENDPOINTS = {"inbox_init", "video_init", "content_init"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inits(emulator: Any) -> list[Any]:
    return [r for r in emulator.records.requests if r.endpoint in INIT_ENDPOINTS]


def puts(emulator: Any, publish_id: str | None = None) -> list[Any]:
    return [r for r in emulator.records.requests
            if r.endpoint == "upload" and (publish_id is None or r.publish_id == publish_id)]


def ranges(records: list[Any]) -> list[str]:
    return [r.content_range.split()[1].split("/")[0] for r in records]


@pytest.fixture
def rig(make_rig: Any) -> Rig:
    rig: Rig = make_rig(overrides={"upload.chunk_size": CHUNK})
    return rig.with_folders()


def video(rig: Rig, folder: str, name: str = "clip.mp4", size: int = BIG, seed: int = 1) -> Path:
    return samples.write_mp4(rig.folder("alice", folder) / name, size=size, seed=seed)


def seed_item(rig: Rig, path: Path, state: State, **fields: Any) -> int:
    """Record the item as the daemon had it when it died (identity from the file, then ``fields``)."""
    stat = os.stat(path)
    name = fields.pop("name", path.name)
    store = Store(rig.state_dir)
    try:
        item = store.add_item(
            account="alice", name=name, kind="video", now=rig.emulator.clock.now(), state=state,
            size=stat.st_size, mtime_ns=stat.st_mtime_ns, ctime_ns=stat.st_ctime_ns, ino=stat.st_ino,
            sha256=sha256(path), content_type="video/mp4", source_mode="inbox", post_info={}, **fields)
        return item.id
    finally:
        store.close()


def item_row(rig: Rig, item_id: int) -> Any:
    store = Store(rig.state_dir)
    try:
        return store.get(item_id)
    finally:
        store.close()


def items_in(rig: Rig, state: State) -> list[Any]:
    store = Store(rig.state_dir)
    try:
        return store.items(states=[state])
    finally:
        store.close()


class Task:
    """A FILE_UPLOAD task at the emulator, made the way the daemon makes one, with some chunks sent."""

    def __init__(self, rig: Rig, path: Path, chunks_sent: int) -> None:
        size = path.stat().st_size
        self.plan = chunks.plan(size, CHUNK)
        client = TikTokClient(rig.emulator.base_url)
        try:
            result = client.init_inbox_video(rig.users["alice"].access_token, plan=self.plan)
        finally:
            client.close()
        self.publish_id = result.publish_id
        assert result.upload_url is not None
        self.upload_url = result.upload_url
        self.acknowledged = 0
        uploader = ChunkUploader()
        try:
            for first, last in self.plan.ranges()[:chunks_sent]:
                self.acknowledged = uploader.put_chunk(self.upload_url, path, first, last, size,
                                                       "video/mp4").next_offset
        finally:
            uploader.close()

    def fields(self, uploaded_bytes: int) -> dict[str, Any]:
        """The item's columns once the init's answer was committed and ``uploaded_bytes`` acknowledged."""
        return {"publish_id": self.publish_id, "upload_url": self.upload_url, "uploaded_bytes": uploaded_bytes,
                "upload_expires_at": None, "chunk_size": self.plan.chunk_size, "chunk_count": self.plan.count,
                "init_count": 1, "folder": "processing"}


def finished(rig: Rig, name: str = "clip.mp4") -> dict[str, Any]:
    sidecar = rig.wait_sidecar("alice", name)
    wait_for(lambda: os.listdir(rig.folder("alice", "processing")) == [], 5, what="processing/ empty")
    assert os.listdir(rig.folder("alice", "inbox")) == []
    # The sidecar's name appears (linked from its temp file) a moment before the temp name is unlinked.
    wait_for(lambda: sorted(os.listdir(rig.folder("alice", "done"))) == [name, f"{name}.json"], 5,
             what=f"done/ holding {name} and its sidecar, nothing else")
    return sidecar


# ---- the init ------------------------------------------------------------------------------------

def test_an_init_recorded_as_started_but_never_answered_is_noted_as_an_orphan_and_sent_once_more(rig):
    """init_started_at committed, then the crash: the next start records one orphan and sends one new init."""
    path = video(rig, "inbox")
    seed_item(rig, path, State.UPLOADING, init_started_at=rig.emulator.clock.now() - 5, init_count=1)
    rig.start()
    sidecar = finished(rig)
    assert len(inits(rig.emulator)) == 1
    assert len(sidecar["orphans"]) == 1 and sidecar["orphans"][0]["publish_id"] is None
    assert "answer was lost" in sidecar["orphans"][0]["note"]
    assert sidecar["attempts"] == 2   # two inits in all: the lost one and this one
    assert rig.emulator.records.completed(sidecar["sha256"]) == 1


def test_an_init_whose_answer_is_lost_on_the_wire_leaves_one_orphan_and_one_post(rig, tmp_path):
    """TikTok carries the init out but the connection drops before its answer: the file still reaches
    done/ with exactly one completed post, and the orphaned task is named in the sidecar."""
    rig.emulator.faults.fail_next("inbox_init", kind="drop_after")
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=300_000, seed=3)
    digest = sha256(tmp_path / "clip.mp4")
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = finished(rig)
    publishes = rig.emulator.records.publishes
    assert len(publishes) == 2                                    # the orphan and the real one
    assert rig.emulator.records.completed(digest) == 1
    orphan = next(p for p in publishes if p.publish_id != sidecar["publish_id"])
    assert orphan.received_bytes == 0 and orphan.status == "PROCESSING_UPLOAD"   # it can never become a post
    assert len(sidecar["orphans"]) == 1 and "answer was lost" in sidecar["orphans"][0]["note"]
    assert any(e["state"] == "orphaned_init" for e in sidecar["history"])


def test_a_refused_init_is_not_an_orphan(rig, tmp_path):
    """TikTok answered (a 5xx): it holds no task, so the retry records no orphan."""
    rig.emulator.faults.fail_next("inbox_init", kind="5xx")
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000, seed=4)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = finished(rig)
    assert "orphans" not in sidecar
    assert len(inits(rig.emulator)) == 2


def test_an_answered_init_whose_file_was_not_yet_moved_moves_it_then_uploads(rig):
    """The init's answer committed, the crash before the rename to processing/: the move is finished."""
    path = video(rig, "inbox")
    task = Task(rig, path, chunks_sent=0)
    seed_item(rig, path, State.UPLOADING, **{**task.fields(0), "folder": "inbox"})
    rig.start()
    sidecar = finished(rig)
    assert sidecar["publish_id"] == task.publish_id and len(inits(rig.emulator)) == 1
    assert ranges(puts(rig.emulator)) == ["0-5242879", "5242880-10485759", "10485760-15999999"]


def test_a_move_to_processing_cut_between_link_and_unlink_is_finished(rig):
    """The file is in inbox/ and processing/ at once (one inode): the inbox copy goes, nothing is doubled."""
    path = video(rig, "processing", size=400_000)
    os.link(path, rig.folder("alice", "inbox") / path.name)
    task = Task(rig, path, chunks_sent=0)
    seed_item(rig, path, State.UPLOADING, **task.fields(0))
    rig.start()
    sidecar = finished(rig)
    assert sidecar["publish_id"] == task.publish_id
    assert len(inits(rig.emulator)) == 1 and rig.emulator.records.completed(sidecar["sha256"]) == 1


# ---- the chunks ----------------------------------------------------------------------------------

def test_acknowledged_chunks_are_not_sent_again(rig):
    """Two of three chunks acknowledged and committed: only the third goes after the restart."""
    path = video(rig, "processing")
    task = Task(rig, path, chunks_sent=2)
    seed_item(rig, path, State.UPLOADING, **task.fields(task.acknowledged))
    rig.start()
    sidecar = finished(rig)
    assert ranges(puts(rig.emulator, task.publish_id)) == ["0-5242879", "5242880-10485759", "10485760-15999999"]
    assert [r.http_status for r in puts(rig.emulator, task.publish_id)] == [206, 206, 201]
    assert len(inits(rig.emulator)) == 1 and sidecar["publish_id"] == task.publish_id


def test_a_chunk_taken_by_tiktok_but_not_committed_is_realigned_from_its_answer(rig):
    """TikTok took chunk 2 but the crash came before it was committed: the one resend gets a 416, the
    upload continues from TikTok's Content-Range, and nothing else is sent twice."""
    path = video(rig, "processing")
    task = Task(rig, path, chunks_sent=2)
    item_id = seed_item(rig, path, State.UPLOADING, **task.fields(CHUNK))   # one chunk behind TikTok
    rig.start()
    finished(rig)
    sent = puts(rig.emulator, task.publish_id)
    assert ranges(sent) == ["0-5242879", "5242880-10485759", "5242880-10485759", "10485760-15999999"]
    assert [r.http_status for r in sent] == [206, 206, 416, 201]
    assert any(e["state"] == "realigned" for e in Store(rig.state_dir).history(item_id))


def test_a_last_chunk_taken_but_not_committed_goes_on_to_processing(rig):
    """The final 201 arrived and the crash came before it was committed: the resend's 416 says every
    byte is in, so the item goes to status polling without a new init."""
    path = video(rig, "processing")
    task = Task(rig, path, chunks_sent=3)
    seed_item(rig, path, State.UPLOADING, **task.fields(2 * CHUNK))
    rig.start()
    sidecar = finished(rig)
    assert [r.http_status for r in puts(rig.emulator, task.publish_id)] == [206, 206, 201, 416]
    assert len(inits(rig.emulator)) == 1 and rig.emulator.records.completed(sidecar["sha256"]) == 1


def test_an_item_in_processing_only_asks_for_its_status(rig):
    """Every byte sent before the crash: the next start asks status/fetch and finishes; nothing is re-sent."""
    path = video(rig, "processing")
    task = Task(rig, path, chunks_sent=3)
    seed_item(rig, path, State.PROCESSING, **task.fields(BIG))
    rig.start()
    sidecar = finished(rig)
    assert sidecar["status"] == "SEND_TO_USER_INBOX"
    assert len(puts(rig.emulator)) == 3 and len(inits(rig.emulator)) == 1
    assert any(r.endpoint == "status" for r in rig.emulator.records.requests)


def test_an_expired_upload_url_means_one_new_init_recorded_as_such(rig):
    """The daemon was down past the upload_url's hour: the abandoned task is recorded, one new init goes."""
    path = video(rig, "processing")
    task = Task(rig, path, chunks_sent=1)
    rig.emulator.expire_upload_url(task.publish_id)
    seed_item(rig, path, State.UPLOADING, **task.fields(task.acknowledged))
    rig.start()
    sidecar = finished(rig)
    assert len(inits(rig.emulator)) == 2 and sidecar["publish_id"] != task.publish_id
    assert [o["publish_id"] for o in sidecar["orphans"]] == [task.publish_id]
    assert rig.emulator.records.completed(sidecar["sha256"]) == 1


def test_an_upload_url_past_its_recorded_expiry_is_not_used(rig):
    """The expiry committed with the init's answer has passed: a new init at once, without trying the old URL."""
    path = video(rig, "processing", size=500_000)
    task = Task(rig, path, chunks_sent=0)
    seed_item(rig, path, State.UPLOADING, **{**task.fields(0), "upload_expires_at": rig.emulator.clock.now() - 1})
    rig.start()
    sidecar = finished(rig)
    assert puts(rig.emulator, task.publish_id) == []
    assert [o["publish_id"] for o in sidecar["orphans"]] == [task.publish_id]
    assert "expired" in sidecar["orphans"][0]["note"]


def test_an_upload_tiktok_no_longer_knows_means_one_new_init(rig):
    """upload_not_found (a 404 on the upload_url): recorded, and the upload starts again once."""
    path = video(rig, "processing", size=500_000)
    task = Task(rig, path, chunks_sent=0)
    fields = task.fields(0)
    fields["upload_url"] = task.upload_url.replace("upload_token=", "upload_token=x")
    seed_item(rig, path, State.UPLOADING, **fields)
    rig.start()
    sidecar = finished(rig)
    assert len(inits(rig.emulator)) == 2
    assert [o["publish_id"] for o in sidecar["orphans"]] == [task.publish_id]


def test_a_chunk_refused_for_a_moment_is_sent_again_after_a_backoff(rig, tmp_path):
    """A 5xx on a chunk parks the item in processing/; it resumes from the same byte, no new init."""
    rig.emulator.faults.fail_next("upload", kind="5xx")
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=11_000_000, seed=5)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = finished(rig)
    sent = puts(rig.emulator)
    assert [r.http_status for r in sent] == [500, 206, 201]
    assert ranges(sent)[:2] == ["0-5242879", "0-5242879"]
    assert len(inits(rig.emulator)) == 1 and "orphans" not in sidecar


# ---- the outcome and the move --------------------------------------------------------------------

def test_an_outcome_committed_before_the_move_is_moved_at_start(rig):
    path = video(rig, "processing", size=300_000)
    seed_item(rig, path, State.DONE, folder="processing", status="SEND_TO_USER_INBOX", publish_id="v_inbox_file~x")
    rig.start()
    sidecar = finished(rig)
    assert sidecar["result"] == "done" and sidecar["publish_id"] == "v_inbox_file~x"
    assert rig.emulator.records.requests == []   # nothing is asked of TikTok again


def test_a_move_to_done_cut_between_link_and_unlink_leaves_one_copy(rig):
    """The crash came after the hard link into done/ and before the unlink: no "clip (2).mp4" appears."""
    path = video(rig, "processing", size=300_000)
    os.link(path, rig.folder("alice", "done") / path.name)
    seed_item(rig, path, State.DONE, folder="processing", result_name=path.name, publish_id="v_inbox_file~x",
              status="SEND_TO_USER_INBOX")
    rig.start()
    finished(rig)


def test_a_moved_file_without_its_sidecar_gets_one_and_a_half_written_one_is_removed(rig):
    """Moved, then the crash inside the sidecar write (only its temp file exists): a whole sidecar appears."""
    path = video(rig, "done", size=300_000)
    (rig.folder("alice", "done") / ".sidecar-abc123.tmp").write_text('{"schema": 1, "res')
    item_id = seed_item(rig, path, State.DONE, folder="processing", result_name=path.name, status="SEND_TO_USER_INBOX",
                        publish_id="v_inbox_file~x")
    rig.start()
    sidecar = finished(rig)
    assert sidecar["sha256"] == sha256(path)
    wait_for(lambda: item_row(rig, item_id).moved == 1, 5, what="moved committed")


def test_a_settings_file_left_behind_by_a_crash_follows_its_media(rig):
    """The media reached done/ as clip (2).mp4 before the crash; its yaml still in processing/ joins it."""
    (rig.folder("alice", "done") / "clip.mp4").write_bytes(b"an older clip")
    path = video(rig, "processing", size=300_000)
    os.rename(path, rig.folder("alice", "done") / "clip (2).mp4")
    (rig.folder("alice", "processing") / "clip.yaml").write_text("title: hello\n")
    seed_item(rig, rig.folder("alice", "done") / "clip (2).mp4", State.DONE, name="clip.mp4", folder="processing",
              result_name="clip (2).mp4", settings_name="clip.yaml", status="SEND_TO_USER_INBOX")
    rig.start()
    rig.wait_sidecar("alice", "clip (2).mp4")
    wait_for(lambda: (rig.folder("alice", "done") / "clip (2).yaml").exists(), 5, what="clip (2).yaml")
    assert os.listdir(rig.folder("alice", "processing")) == []


# ---- file identity and duplicates ----------------------------------------------------------------

def test_a_file_changed_during_its_upload_starts_again_as_new_content(rig, tmp_path):
    """The file is rewritten while chunk 1 is in flight: the task is abandoned before it gets the rest,
    and the new content is what reaches TikTok (once) and done/."""
    rig.emulator.faults.fail_next("upload", kind="slow", delay=1.0)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=11_000_000, seed=6)
    old = sha256(tmp_path / "clip.mp4")
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: "upload" not in rig.emulator.faults.pending(), 10, what="the first chunk in flight")
    samples.write_mp4(tmp_path / "new.mp4", size=11_500_000, seed=7)
    new = sha256(tmp_path / "new.mp4")
    with open(rig.folder("alice", "processing") / "clip.mp4", "r+b") as handle:   # in place: same inode
        handle.write((tmp_path / "new.mp4").read_bytes())
    sidecar = finished(rig)
    assert sidecar["sha256"] == new and sidecar["size"] == 11_500_000
    assert rig.emulator.records.completed(new) == 1 and rig.emulator.records.completed(old) == 0
    assert len(sidecar["orphans"]) == 1 and "changed" in sidecar["orphans"][0]["note"]


def test_a_file_changed_between_intake_and_upload_goes_as_its_new_content(rig):
    """Taken in with one content, replaced before its turn: it waits to settle, then the new bytes go."""
    path = video(rig, "inbox", size=300_000, seed=8)
    item_id = seed_item(rig, path, State.QUEUED)
    samples.write_mp4(path.with_name("other.tmp"), size=320_000, seed=9)
    os.replace(path.with_name("other.tmp"), path)
    rig.start()
    sidecar = finished(rig)
    assert sidecar["sha256"] == sha256(rig.folder("alice", "done") / "clip.mp4") and sidecar["size"] == 320_000
    assert [p.sha256 for p in rig.emulator.records.publishes] == [sidecar["sha256"]]
    assert item_row(rig, item_id).state is State.DONE


def test_the_same_content_again_is_failed_as_a_duplicate_naming_the_first(rig, tmp_path):
    """dedupe (on by default): the same bytes under another name, after the first is done → failed/."""
    rig.start()
    samples.write_mp4(tmp_path / "a.mp4", size=250_000, seed=10)
    data = (tmp_path / "a.mp4").read_bytes()
    rig.drop("alice", "a.mp4", tmp_path / "a.mp4")
    rig.wait_sidecar("alice", "a.mp4")
    (tmp_path / "b.mp4").write_bytes(data)
    rig.drop("alice", "b.mp4", tmp_path / "b.mp4")
    failed = rig.wait_sidecar("alice", "b.mp4", "failed")
    assert failed["error"]["code"] == "duplicate" and "done/a.mp4" in failed["error"]["message"]
    assert failed["duplicate_of"] == 1
    assert len(inits(rig.emulator)) == 1


def test_a_copy_that_went_first_makes_the_waiting_original_the_duplicate(rig, tmp_path):
    """The first file waits for its publish_at; a copy without one goes at once. When the first comes
    due it is the duplicate: TikTok gets the content once."""
    rig.start()
    samples.write_mp4(tmp_path / "first.mp4", size=250_000, seed=11)
    data = (tmp_path / "first.mp4").read_bytes()
    later = datetime.datetime.fromtimestamp(rig.emulator.clock.now() + 3600, datetime.UTC)
    (rig.folder("alice", "inbox") / "first.yaml").write_text(f'publish_at: "{later.isoformat()}"\n')
    rig.drop("alice", "first.mp4", tmp_path / "first.mp4")
    wait_for(lambda: items_in(rig, State.WAITING), 10, what="first.mp4 waiting")
    (tmp_path / "copy.mp4").write_bytes(data)
    rig.drop("alice", "copy.mp4", tmp_path / "copy.mp4")
    rig.wait_sidecar("alice", "copy.mp4")
    rig.emulator.clock.advance(3700)
    failed = rig.wait_sidecar("alice", "first.mp4", "failed")
    assert failed["error"]["code"] == "duplicate" and "copy.mp4" in failed["error"]["message"]
    assert len(inits(rig.emulator)) == 1


# ---- a Direct Post pulled from the media host ----------------------------------------------------

def test_a_direct_post_whose_pull_init_answer_was_lost_is_never_sent_again(tmp_path):
    """Direct mode + pull_from_url, the init's answer lost: TikTok may publish that one, so the staged
    URL is removed (a pull not yet done fails) and the item is failed, saying why; no second init."""
    from tests.test_photos import hosted_rig, staged_files

    accounts = {"bob": {"mode": "direct", "video_source": "pull_from_url",
                        "defaults": {"privacy_level": "SELF_ONLY"}}}
    with hosted_rig(tmp_path, accounts=accounts) as hosted:
        hosted.emulator.faults.fail_next("video_init", kind="drop_after")
        hosted.start()
        samples.write_mp4(tmp_path / "clip.mp4", size=300_000, seed=12)
        hosted.drop("bob", "clip.mp4", tmp_path / "clip.mp4")
        failed = hosted.wait_sidecar("bob", "clip.mp4", "failed")
        assert failed["error"]["code"] == "init_answer_lost"
        assert "may already be published" in failed["error"]["message"]
        assert len(failed["orphans"]) == 1
        assert len(inits(hosted.emulator)) == 1
        wait_for(lambda: staged_files(hosted) == [], 5, what="the staged video removed")
