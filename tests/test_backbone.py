"""The main path: videos dropped in an inbox reach TikTok (the emulator) as drafts and land in done/."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tests.harness import wait_for
from watchfolder.media import samples

INIT_ENDPOINTS = {"inbox_init", "video_init", "content_init"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inits(emulator) -> list:
    return [r for r in emulator.records.requests if r.endpoint in INIT_ENDPOINTS]


def test_three_videos_reach_done_with_sidecars_and_exact_bytes(make_rig, tmp_path):
    # 6,000,000-byte chunks: the 12 MB file goes in two (with 10,000,000 TikTok's floor rule makes it one).
    rig = make_rig(overrides={"upload.chunk_size": 6_000_000})
    sources = {}
    for name, size in (("a.mp4", 300_000), ("b.mov", 1_500_000), ("big.mp4", 12_000_000)):
        path = tmp_path / name
        samples.write_mp4(path, size=size, brand="qt  " if name.endswith(".mov") else "isom")
        sources[name] = sha256(path)
    rig.start()
    for name in sources:
        rig.drop("alice", name, tmp_path / name)
    for name, digest in sources.items():
        sidecar = rig.wait_sidecar("alice", name)
        assert sidecar["result"] == "done"
        assert sidecar["status"] == "SEND_TO_USER_INBOX"
        assert sidecar["sha256"] == digest
        assert sidecar["error"] is None
        assert sidecar["account"] == "alice" and sidecar["kind"] == "video" and sidecar["mode"] == "inbox"
        assert sidecar["publish_id"]
        assert [e["state"] for e in sidecar["history"]][:2] == ["detected", "queued"]
        assert (rig.folder("alice", "done") / name).exists()
    received = {p.sha256 for p in emulator_publishes(rig)}
    assert set(sources.values()) <= received
    big = next(p for p in emulator_publishes(rig) if p.sha256 == sources["big.mp4"])
    assert len(big.chunk_ranges) == 2
    assert os.listdir(rig.folder("alice", "inbox")) == []
    assert os.listdir(rig.folder("alice", "processing")) == []


def emulator_publishes(rig):
    return list(rig.emulator.records.publishes)


def test_a_file_written_slowly_is_not_taken_before_it_is_complete(make_rig, tmp_path):
    rig = make_rig()
    rig.start()
    full = tmp_path / "full.mp4"
    samples.write_mp4(full, size=400_000)
    data = full.read_bytes()
    target = rig.folder("alice", "inbox") / "slow.mp4"
    # Five pieces, 0.2 s apart: longer than settle_seconds (0.3 s) in total, never quiet for that long.
    with open(target, "wb") as handle:
        for index in range(5):
            handle.write(data[index * len(data) // 5:(index + 1) * len(data) // 5])
            handle.flush()
            time.sleep(0.2)
    sidecar = rig.wait_sidecar("alice", "slow.mp4")
    assert sidecar["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(inits(rig.emulator)) == 1


def test_files_present_at_start_are_taken_and_finished_ones_are_not_sent_again(make_rig, tmp_path):
    rig = make_rig()
    (rig.folder("alice", "inbox")).mkdir(parents=True)
    samples.write_mp4(rig.folder("alice", "inbox") / "early.mp4", size=200_000)
    rig.start()
    rig.wait_sidecar("alice", "early.mp4")
    assert rig.stop() == 0
    assert len(inits(rig.emulator)) == 1
    rig.start()
    samples.write_mp4(tmp_path / "later.mp4", size=210_000, duration_seconds=3)
    rig.drop("alice", "later.mp4", tmp_path / "later.mp4")
    rig.wait_sidecar("alice", "later.mp4")
    assert len(inits(rig.emulator)) == 2   # early.mp4 was not uploaded again


def test_text_and_empty_files_fail_with_a_reason_and_no_api_call(make_rig, tmp_path):
    rig = make_rig()
    rig.start()
    (tmp_path / "notes.txt.bak").write_text("not a video")
    (tmp_path / "readme.md").write_text("# not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "fake.mp4").write_text("hello, I am text with an mp4 name\n")
    rig.drop("alice", "readme.md", tmp_path / "readme.md")
    rig.drop("alice", "empty.mp4", tmp_path / "empty.mp4")
    rig.drop("alice", "fake.mp4", tmp_path / "fake.mp4")
    readme = rig.wait_sidecar("alice", "readme.md", "failed")
    empty = rig.wait_sidecar("alice", "empty.mp4", "failed")
    fake = rig.wait_sidecar("alice", "fake.mp4", "failed")
    assert readme["error"]["code"] == "unsupported_media"
    assert empty["error"]["code"] == "empty_file"
    assert fake["error"]["code"] == "unsupported_media"
    for sidecar in (readme, empty, fake):
        assert sidecar["result"] == "failed" and sidecar["error"]["message"]
    assert (rig.folder("alice", "failed") / "readme.md").exists()
    assert inits(rig.emulator) == []
    assert [r for r in rig.emulator.records.requests if r.endpoint == "upload"] == []


def test_a_name_taken_in_done_gets_a_suffix_and_nothing_is_overwritten(make_rig, tmp_path):
    rig = make_rig(overrides={"dedupe": False})
    rig.start()
    samples.write_mp4(tmp_path / "one.mp4", size=150_000, duration_seconds=2)
    rig.drop("alice", "clip.mp4", tmp_path / "one.mp4")
    rig.wait_sidecar("alice", "clip.mp4")
    samples.write_mp4(tmp_path / "two.mp4", size=160_000, duration_seconds=4)
    rig.drop("alice", "clip.mp4", tmp_path / "two.mp4")
    second = rig.wait_sidecar("alice", "clip (2).mp4")
    assert second["sha256"] == sha256(rig.folder("alice", "done") / "clip (2).mp4")
    assert sha256(rig.folder("alice", "done") / "clip.mp4") != second["sha256"]
    wait_for(lambda: os.listdir(rig.folder("alice", "processing")) == [], 5)
