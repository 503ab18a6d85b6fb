"""Disk trouble: a target folder that is read-only, full or forbidden never loses a file.

The item stays where it is, the reason is logged and shown by `watchfolder status`, the move is tried
again later, and it completes once the folder is usable. chmod cannot make a folder read-only for
root, so the refusal is made real at the one seam every move goes through (outbox.move_no_overwrite)
or where the sidecar is written (outbox.write_sidecar), raising what the kernel would.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.harness import Rig, wait_for
from watchfolder.commands import status
from watchfolder.daemon import loop, outbox, pipeline
from watchfolder.media import samples

INIT_ENDPOINTS = {"inbox_init", "video_init", "content_init"}


class Trouble:
    """While ``on`` is set, moves into ``folder`` (or sidecar writes there) fail with ``error``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: str, error: int, *, sidecar: bool = False) -> None:
        self.folder = folder
        self.error = error
        self.on = threading.Event()
        self.on.set()
        self.refused = 0
        if sidecar:
            real_write = outbox.write_sidecar

            def write_sidecar(target: Path, media_name: str, data: Any) -> Path:
                self.check(target / media_name)
                return real_write(target, media_name, data)

            monkeypatch.setattr(outbox, "write_sidecar", write_sidecar)
        else:
            real_move = outbox.move_no_overwrite

            def move_no_overwrite(src: Path, dst: Path) -> None:
                self.check(dst)
                real_move(src, dst)

            monkeypatch.setattr(outbox, "move_no_overwrite", move_no_overwrite)

    def check(self, target: Path) -> None:
        if self.on.is_set() and target.parent.name == self.folder:
            self.refused += 1
            raise OSError(self.error, os.strerror(self.error), str(target))


def status_of(rig: Rig, capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    """The row `watchfolder status --json` shows for ``name`` ({} while there is none)."""
    capsys.readouterr()
    status.main(rig.settings, as_json=True, now=rig.emulator.clock.now())
    rows = json.loads(capsys.readouterr().out).get("items", [])
    return next((row for row in rows if row["name"] == name), {})


def status_text(rig: Rig, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    status.main(rig.settings, now=rig.emulator.clock.now())
    return capsys.readouterr().out


def digest(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize(("error", "words"), [
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
    (errno.ENOSPC, "no space left on device"),
])
def test_a_done_folder_that_refuses_the_move_keeps_the_item_in_processing_until_it_can(
        make_rig, tmp_path, monkeypatch, capsys, error, words):
    rig = make_rig()
    trouble = Trouble(monkeypatch, "done", error)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=300_000)
    content = digest(tmp_path / "clip.mp4")
    with structlog.testing.capture_logs() as logs:
        rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
        reason = f"cannot move to done/: {words}; will retry"
        wait_for(lambda: status_of(rig, capsys, "clip.mp4").get("detail") == reason, 15, what="the reason in status")
    row = status_of(rig, capsys, "clip.mp4")
    assert (row["state"], row["folder"]) == ("done", "processing")
    assert reason in status_text(rig, capsys)
    assert any(e["event"] == "move_failed" and e["reason"] == reason for e in logs)
    # Nothing is deleted or half-made while it waits, however often it is tried.
    for _ in range(3):
        rig.emulator.clock.advance(loop.FINISH_RETRY_SECONDS + 1)
        wait_for(lambda count=trouble.refused: trouble.refused > count, 5, what="another try")
    assert digest(rig.folder("alice", "processing") / "clip.mp4") == content
    assert os.listdir(rig.folder("alice", "done")) == []
    trouble.on.clear()
    rig.emulator.clock.advance(loop.FINISH_RETRY_SECONDS + 1)
    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    assert sidecar["result"] == "done"
    assert digest(rig.folder("alice", "done") / "clip.mp4") == content
    assert sorted(os.listdir(rig.folder("alice", "done"))) == ["clip.mp4", "clip.mp4.json"]
    assert os.listdir(rig.folder("alice", "processing")) == []
    wait_for(lambda: status_of(rig, capsys, "clip.mp4").get("detail") is None, 5, what="the reason cleared")
    assert len([r for r in rig.emulator.records.requests if r.endpoint in INIT_ENDPOINTS]) == 1


def test_a_full_disk_while_the_sidecar_is_written_leaves_no_half_sidecar_and_writes_it_later(
        make_rig, tmp_path, monkeypatch, capsys):
    rig = make_rig()
    trouble = Trouble(monkeypatch, "done", errno.ENOSPC, sidecar=True)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=300_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    reason = "cannot move to done/: no space left on device; will retry"
    wait_for(lambda: status_of(rig, capsys, "clip.mp4").get("detail") == reason, 15, what="the reason in status")
    assert os.listdir(rig.folder("alice", "done")) == ["clip.mp4"]   # the media moved; no sidecar, no temp file
    trouble.on.clear()
    rig.emulator.clock.advance(loop.FINISH_RETRY_SECONDS + 1)
    rig.wait_sidecar("alice", "clip.mp4")
    assert sorted(os.listdir(rig.folder("alice", "done"))) == ["clip.mp4", "clip.mp4.json"]
    assert os.listdir(rig.folder("alice", "processing")) == []


def test_a_failed_folder_that_refuses_the_move_keeps_a_refused_file_in_the_inbox(
        make_rig, tmp_path, monkeypatch, capsys):
    rig = make_rig()
    trouble = Trouble(monkeypatch, "failed", errno.EACCES)
    rig.start()
    (tmp_path / "notes.md").write_text("not a video\n")
    rig.drop("alice", "notes.md", tmp_path / "notes.md")
    reason = "cannot move to failed/: permission denied; will retry"
    wait_for(lambda: status_of(rig, capsys, "notes.md").get("detail") == reason, 15, what="the reason in status")
    assert (rig.folder("alice", "inbox") / "notes.md").read_text() == "not a video\n"
    trouble.on.clear()
    rig.emulator.clock.advance(loop.FINISH_RETRY_SECONDS + 1)
    sidecar = rig.wait_sidecar("alice", "notes.md", "failed")
    assert sidecar["error"]["code"] == "unsupported_media"
    assert os.listdir(rig.folder("alice", "inbox")) == []


def test_a_processing_folder_that_refuses_the_move_keeps_the_item_in_the_inbox_and_its_upload(
        make_rig, tmp_path, monkeypatch, capsys):
    """The init is answered, then processing/ refuses the file: it waits in inbox/ with the reason, and
    once the folder is writable it moves and uploads on the same publish_id (no second init)."""
    rig = make_rig()
    trouble = Trouble(monkeypatch, "processing", errno.EACCES)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=300_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    reason = "cannot move to processing/: permission denied; will retry"
    wait_for(lambda: status_of(rig, capsys, "clip.mp4").get("detail") == reason, 15, what="the reason in status")
    row = status_of(rig, capsys, "clip.mp4")
    assert (row["state"], row["folder"]) == ("waiting", "inbox")
    assert (rig.folder("alice", "inbox") / "clip.mp4").exists()
    trouble.on.clear()
    rig.emulator.clock.advance(pipeline.DISK_RETRY_SECONDS + 1)
    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    assert sidecar["publish_id"] == row["publish_id"]
    assert len([r for r in rig.emulator.records.requests if r.endpoint in INIT_ENDPOINTS]) == 1
    assert os.listdir(rig.folder("alice", "processing")) == [] and os.listdir(rig.folder("alice", "inbox")) == []
