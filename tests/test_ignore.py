"""The inbox's junk rules: what is never uploaded or moved, and what must not be mistaken for junk."""

from __future__ import annotations

import os

import pytest

from watchfolder.intake.ignore import is_ignored

# Every rule of the interface's ignore list, then the extras from NAS/OS practice.
JUNK = [
    ".DS_Store", "._clip.mp4", ".hidden.mp4", ".stfolder", ".~tmp~", ".syncthing.clip.mp4.tmp",
    "clip.mp4.part", "clip.mp4.partial", "clip.mp4.crdownload", "upload.tmp", "upload.temp",
    "~$report.docx", "clip.mp4.!sync", "clip.syncthing.mp4", "~syncthing~clip.mp4.tmp",
    "@eaDir", "#recycle", "#snapshot", "lost+found",
    "Thumbs.db", "desktop.ini", "clip.mp4@SynoEAStream", "clip.mp4@SynoResource", "@Recycle", "__MACOSX",
    "clip.mp4.!qB",
]


@pytest.mark.parametrize("name", JUNK)
def test_builtin_junk_is_ignored(name: str) -> None:
    assert is_ignored(name)


@pytest.mark.parametrize("name", ["THUMBS.DB", "Desktop.INI", "CLIP.MP4.PART", "#Recycle", "@EADIR", "x.TMP"])
def test_rules_ignore_case(name: str) -> None:
    """The same share is written from Windows and macOS clients, which do not agree on case."""
    assert is_ignored(name)


@pytest.mark.parametrize(
    "name",
    ["clip.mp4", "party.mp4", "temporary.mov", "my.partial.view.mp4", "trip", "recycle", "eaDir",
     "photo~1.jpg", "tmp", "IMG_0001.JPG", "post.yaml", "clip (2).mp4", "café.mp4"],
)
def test_ordinary_names_are_not_ignored(name: str) -> None:
    """Names that merely resemble junk (party.mp4 vs *.part) are media, not junk."""
    assert not is_ignored(name)


def test_user_globs_extend_the_defaults_case_insensitively() -> None:
    assert is_ignored("old.BAK", ["*.bak"])
    assert is_ignored("Drafts", ["drafts"])
    assert is_ignored(".DS_Store", ["*.bak"]), "user globs add to the defaults, never replace them"
    assert not is_ignored("old.bak")
    assert not is_ignored("clip.mp4", ["*.bak", "drafts"])


def test_user_globs_match_one_name_not_a_path() -> None:
    assert not is_ignored("x.mp4", ["drafts/*"])


@pytest.mark.parametrize("raw", [b"clip\xff.mp4", b"\xe9t\xe9.mov", b"bad\xff.part", b".\xff"])
def test_undecodable_names_never_crash(raw: bytes) -> None:
    name = os.fsdecode(raw)  # what os.scandir hands over for bytes that are not UTF-8
    assert is_ignored(name) == (raw.endswith(b".part") or raw.startswith(b"."))


def test_empty_name_is_not_ignored() -> None:
    assert not is_ignored("")
