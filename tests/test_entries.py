"""What a top-level inbox name is, from its name and lstat only, on real folders."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from watchfolder.core.text import display_name
from watchfolder.intake.entries import classify, list_inbox, natural_key, photo_files, settings_for


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "alice" / "inbox"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize(
    ("name", "kind"),
    [("clip.mp4", "video"), ("CLIP.MOV", "video"), ("a.m4v", "video"), ("a.WebM", "video"),
     ("p.jpg", "photo"), ("p.JPEG", "photo"), ("p.webp", "photo"), ("p.png", "photo"),
     ("clip.yaml", "settings"), ("clip.YML", "settings"), ("clip.txt", "settings"),
     ("doc.pdf", "other"), ("noext", "other")],
)
def test_regular_files_are_classified_by_suffix(inbox: Path, name: str, kind: str) -> None:
    (inbox / name).write_bytes(b"x")
    entry = classify(inbox, "alice", name, ())
    assert (entry.account, entry.name, entry.path, entry.kind) == ("alice", name, inbox / name, kind)


def test_folder_is_a_photo_set_and_absent_name_is_missing(inbox: Path) -> None:
    (inbox / "trip").mkdir()
    assert classify(inbox, "alice", "trip", ()).kind == "photo_set"
    assert classify(inbox, "alice", "gone.mp4", ()).kind == "missing"


def test_ignored_names_are_reported_without_touching_the_disk(inbox: Path) -> None:
    assert classify(inbox, "alice", ".DS_Store", ()).kind == "ignored"
    assert classify(inbox, "alice", "clip.mp4.part", ()).kind == "ignored"
    assert classify(inbox, "alice", "old.bak", ["*.bak"]).kind == "ignored"


def test_fifo_is_other(inbox: Path) -> None:
    os.mkfifo(inbox / "pipe.mp4")
    assert classify(inbox, "alice", "pipe.mp4", ()).kind == "other"


def test_symlinks_are_never_followed(inbox: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "private.mp4").write_bytes(b"x")
    os.symlink(outside / "private.mp4", inbox / "link.mp4")
    os.symlink(outside, inbox / "linked_folder")
    os.symlink(tmp_path / "nowhere.mp4", inbox / "dangling.mp4")

    kinds = {name: classify(inbox, "alice", name, ()).kind for name in ("link.mp4", "linked_folder", "dangling.mp4")}

    assert kinds == {"link.mp4": "symlink", "linked_folder": "symlink", "dangling.mp4": "symlink"}
    assert {e.name: e.kind for e in list_inbox(inbox, "alice", ())} == kinds


def test_nfd_and_undecodable_names_classify_and_display_readably(inbox: Path) -> None:
    nfd = unicodedata.normalize("NFD", "café.mp4")  # how macOS clients write it
    (inbox / nfd).write_bytes(b"x")
    raw = os.fsencode(str(inbox)) + b"/clip\xff.mp4"  # not UTF-8: created through a bytes path
    with open(raw, "wb") as handle:
        handle.write(b"x")

    listed = {e.name: e for e in list_inbox(inbox, "alice", ())}

    undecodable = os.fsdecode(b"clip\xff.mp4")
    assert set(listed) == {nfd, undecodable}
    assert classify(inbox, "alice", nfd, ()).kind == "video"
    assert classify(inbox, "alice", undecodable, ()).kind == "video"
    assert listed[undecodable].path.exists(), "the name must still reach the very same file"
    assert display_name(nfd) == "café.mp4" == unicodedata.normalize("NFC", "café.mp4")
    assert display_name(undecodable) == "clip\\xff.mp4"


def test_display_name_escapes_control_characters() -> None:
    assert display_name("evil\nlog_line.mp4") == "evil\\x0alog_line.mp4"
    assert display_name("plain.mp4") == "plain.mp4"


def test_list_inbox_is_one_level_in_natural_order_without_junk(inbox: Path) -> None:
    for name in ("clip10.mp4", "clip2.mp4", "Clip1.mp4", ".DS_Store", "x.part", "old.bak"):
        (inbox / name).write_bytes(b"x")
    (inbox / "trip").mkdir()
    (inbox / "trip" / "1.jpg").write_bytes(b"x")
    (inbox / "@eaDir").mkdir()

    listed = list_inbox(inbox, "alice", ["*.bak"])

    assert [(e.name, e.kind) for e in listed] == [
        ("Clip1.mp4", "video"), ("clip2.mp4", "video"), ("clip10.mp4", "video"), ("trip", "photo_set")]


def test_list_inbox_of_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list_inbox(tmp_path / "not-mounted", "alice", ())


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["img10.jpg", "img2.jpg", "IMG1.jpg", "img2a.jpg", "a.jpg", "10.jpg", "9.jpg"]
    assert sorted(names, key=natural_key) == ["9.jpg", "10.jpg", "a.jpg", "IMG1.jpg", "img2.jpg", "img2a.jpg",
                                              "img10.jpg"]
    assert natural_key("img02.jpg") != natural_key("img2.jpg"), "different names never tie"


def test_settings_for_a_file_prefers_yaml_then_yml_then_txt(inbox: Path) -> None:
    (inbox / "clip.mp4").write_bytes(b"x")
    assert settings_for(inbox, "clip.mp4") is None
    (inbox / "clip.txt").write_text("caption")
    assert settings_for(inbox, "clip.mp4") == inbox / "clip.txt"
    (inbox / "clip.YML").write_text("title: x")
    assert settings_for(inbox, "clip.mp4") == inbox / "clip.YML"
    (inbox / "clip.yaml").write_text("title: x")
    assert settings_for(inbox, "clip.mp4") == inbox / "clip.yaml"
    assert settings_for(inbox, "other.mp4") is None


def test_settings_for_matches_nfd_and_nfc_spellings(inbox: Path) -> None:
    (inbox / unicodedata.normalize("NFD", "café.mp4")).write_bytes(b"x")
    (inbox / unicodedata.normalize("NFC", "café.yaml")).write_text("title: x")
    found = settings_for(inbox, unicodedata.normalize("NFD", "café.mp4"))
    assert found == inbox / unicodedata.normalize("NFC", "café.yaml")


def test_settings_for_a_folder_is_its_post_yaml_and_never_a_symlink(inbox: Path, tmp_path: Path) -> None:
    trip = inbox / "trip"
    trip.mkdir()
    (inbox / "trip.yaml").write_text("title: beside")  # beside a folder does not count
    assert settings_for(inbox, "trip") is None
    (tmp_path / "elsewhere.yaml").write_text("title: x")
    os.symlink(tmp_path / "elsewhere.yaml", trip / "post.yaml")
    assert settings_for(inbox, "trip") is None
    os.remove(trip / "post.yaml")
    (trip / "post.yaml").write_text("title: inside")
    assert settings_for(inbox, "trip") == trip / "post.yaml"


def test_photo_files_natural_order_without_junk_links_folders_or_settings(inbox: Path, tmp_path: Path) -> None:
    trip = inbox / "trip"
    trip.mkdir()
    for name in ("img10.jpg", "img2.JPG", "img1.webp", "cover.png", "post.yaml", "notes.pdf", "._img3.jpg",
                 "img4.jpg.part"):
        (trip / name).write_bytes(b"x")
    (trip / "@eaDir").mkdir()
    (trip / "@eaDir" / "img1.jpg").write_bytes(b"x")
    (trip / "sub").mkdir()
    (tmp_path / "outside.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "outside.jpg", trip / "img5.jpg")

    assert photo_files(trip, ()) == [trip / n for n in ("cover.png", "img1.webp", "img2.JPG", "img10.jpg")]

