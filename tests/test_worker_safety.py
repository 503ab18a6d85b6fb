"""A worker never crash-loops: an OS error or a bug mid-trip parks the item, which later completes."""

from __future__ import annotations

import errno

from tests.harness import wait_for
from watchfolder.daemon import publisher as publish
from watchfolder.media import samples
from watchfolder.ops import report
from watchfolder.store.store import Store


def test_a_share_error_mid_upload_parks_the_item_and_it_completes_later(make_rig, tmp_path, monkeypatch):
    rig = make_rig()
    original = publish.Publisher.put_chunk
    failures = {"left": 1}

    def flaky(self, *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EIO, "Input/output error")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(publish.Publisher, "put_chunk", flaky)
    monkeypatch.setattr("watchfolder.daemon.pipeline.DISK_RETRY_SECONDS", 0.5)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=90_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    states = [event["state"] for event in sidecar["history"]]
    assert "waiting" in states and states[-1] == "done"
    assert rig.emulator.records.completed(sidecar["sha256"]) == 1


def test_an_unexpected_error_is_retried_with_the_budget_not_in_a_hot_loop(make_rig, tmp_path, monkeypatch):
    rig = make_rig(overrides={"upload.max_attempts": 2, "upload.retry_initial": 0.2})
    calls = {"n": 0}

    def broken(self, *args, **kwargs):
        calls["n"] += 1
        raise RuntimeError("a bug")

    monkeypatch.setattr(publish.Publisher, "init", broken)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=90_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = rig.wait_sidecar("alice", "clip.mp4", "failed")
    assert sidecar["error"]["code"] == "unexpected_error"
    assert "RuntimeError: a bug" in sidecar["error"]["message"]
    assert calls["n"] == 2
    store = Store(rig.state_dir, readonly=True)
    assert store.items(account="alice")[0].attempts == 2
    store.close()
    wait_for(lambda: report.collect(rig.settings, rig.emulator.clock.now())["items"], 5)
