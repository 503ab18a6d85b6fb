"""Moves never overwrite; sidecars are written whole (pyfakefs for the pure filesystem rules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchfolder.daemon import outbox


@pytest.fixture
def folders(fs):
    for name in ("inbox", "done"):
        fs.create_dir(f"/r/a/{name}")
    return Path("/r/a")


def test_a_taken_name_gets_the_next_free_suffix_with_its_settings_file(fs, folders):
    fs.create_file("/r/a/inbox/clip.mp4", contents="new")
    fs.create_file("/r/a/inbox/clip.yaml", contents="title: x")
    fs.create_file("/r/a/done/clip.mp4", contents="old")
    fs.create_file("/r/a/done/clip (2).mp4.json", contents="{}")
    name, settings = outbox.move_item(folders / "inbox", folders / "done", "clip.mp4", "clip.yaml")
    assert (name, settings) == ("clip (3).mp4", "clip (3).yaml")
    assert Path("/r/a/done/clip.mp4").read_text() == "old"
    assert Path("/r/a/done/clip (3).mp4").read_text() == "new"
    assert not Path("/r/a/inbox/clip.mp4").exists()


def test_folders_move_with_a_suffix_too(fs, folders):
    fs.create_file("/r/a/inbox/trip/1.jpg")
    fs.create_dir("/r/a/done/trip")
    name, _ = outbox.move_item(folders / "inbox", folders / "done", "trip")
    assert name == "trip (2)" and Path("/r/a/done/trip (2)/1.jpg").exists()


def test_move_refuses_to_replace_an_existing_file(fs, folders):
    fs.create_file("/r/a/inbox/x.mp4", contents="a")
    fs.create_file("/r/a/done/x.mp4", contents="b")
    with pytest.raises(FileExistsError):
        outbox.move_no_overwrite(Path("/r/a/inbox/x.mp4"), Path("/r/a/done/x.mp4"))
    assert Path("/r/a/done/x.mp4").read_text() == "b"


def test_sidecar_is_written_whole_and_leaves_no_temp_file(fs, folders):
    path = outbox.write_sidecar(folders / "done", "clip.mp4", {"schema": 1, "name": "clip.mp4", "title": "é🐈"})
    assert path.name == "clip.mp4.json"
    assert json.loads(path.read_text(encoding="utf-8"))["title"] == "é🐈"
    assert sorted(p.name for p in (folders / "done").iterdir()) == ["clip.mp4.json"]


def test_suffixes_keep_the_extension():
    assert outbox.suffixed("clip.mp4", 2) == "clip (2).mp4"
    assert outbox.suffixed("trip", 3) == "trip (3)"
    assert outbox.suffixed(".hidden", 2) == ".hidden (2)"
    assert outbox.suffixed("clip.mp4", 1) == "clip.mp4"


def test_root_is_never_created(fs):
    with pytest.raises(FileNotFoundError):
        outbox.ensure_account_folders(Path("/missing"), "alice")
    fs.create_dir("/srv")
    base = outbox.ensure_account_folders(Path("/srv"), "alice")
    assert sorted(p.name for p in base.iterdir()) == ["done", "failed", "inbox", "processing"]
