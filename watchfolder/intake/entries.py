"""What a top-level name in an inbox is, judged from its name and ``lstat`` only (no content is read).

Symlinks are never followed, at the top level or inside a photo folder: a link could point anywhere
on the machine (``/etc``, another account's folder), and uploading its target would publish a file
the user never dropped.

Names are ``str`` as ``os.fsdecode`` gives them, so a name made of bytes that are not UTF-8 holds
surrogate escapes; it round-trips to the same file, and ``display_name`` shows it readably.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from watchfolder.intake.ignore import is_ignored

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm"})
# .png is listed so a PNG becomes a photo item that intake can convert or refuse with a clear reason,
# rather than "unsupported file".
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".webp", ".png"})
SETTINGS_SUFFIXES = (".yaml", ".yml", ".txt")  # in order of preference when several exist
FOLDER_SETTINGS_STEM = "post"

VIDEO = "video"
PHOTO = "photo"
PHOTO_SET = "photo_set"
SETTINGS = "settings"
IGNORED = "ignored"
SYMLINK = "symlink"
OTHER = "other"
MISSING = "missing"


@dataclass(frozen=True)
class Entry:
    """One top-level entry of an account's inbox.

    ``kind`` is one of "video", "photo", "photo_set" (a folder), "settings" (.yaml/.yml/.txt),
    "ignored", "symlink", "other" (any other file: unsupported) or "missing" (gone already).
    """

    account: str
    name: str
    path: Path
    kind: str


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _kind_of_file(name: str) -> str:
    suffix = _suffix(name)
    if suffix in VIDEO_SUFFIXES:
        return VIDEO
    if suffix in PHOTO_SUFFIXES:
        return PHOTO
    if suffix in SETTINGS_SUFFIXES:
        return SETTINGS
    return OTHER


def _kind_of_mode(name: str, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return SYMLINK
    if stat.S_ISDIR(mode):
        return PHOTO_SET
    if stat.S_ISREG(mode):
        return _kind_of_file(name)
    return OTHER  # fifo, socket, device: nothing we can upload


def classify(inbox: Path, account: str, name: str, ignore_globs: Sequence[str] = ()) -> Entry:
    """Given an inbox folder and one top-level name in it, return what that entry is.

    Judged from the name and ``lstat`` only. Ignored names are reported as "ignored" without touching
    the disk. A name that does not exist is "missing". Raise OSError for any other failure to
    ``lstat`` (a share outage, EACCES), so a glitch is never mistaken for the user taking a file out.
    """
    path = inbox / name
    if is_ignored(name, ignore_globs):
        return Entry(account, name, path, IGNORED)
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return Entry(account, name, path, MISSING)
    return Entry(account, name, path, _kind_of_mode(name, mode))


def list_inbox(inbox: Path, account: str, ignore_globs: Sequence[str] = ()) -> list[Entry]:
    """Given an inbox folder, return its top-level entries in natural name order, ignored ones left out.

    One ``os.scandir`` and no recursion; entries that vanish while being listed are left out. Raise
    OSError if the inbox itself cannot be read (missing share, permission).
    """
    found: list[Entry] = []
    with os.scandir(inbox) as listing:
        for dirent in listing:
            if is_ignored(dirent.name, ignore_globs):
                continue
            try:
                mode = dirent.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue  # removed between readdir and lstat
            found.append(Entry(account, dirent.name, inbox / dirent.name, _kind_of_mode(dirent.name, mode)))
    found.sort(key=lambda entry: natural_key(entry.name))
    return found


def _same_name(a: str, b: str) -> bool:
    # macOS clients write decomposed (NFD) names; a clip.mp4 and its clip.yaml may differ only in that.
    return unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)


def _first_settings_file(folder: Path, stem: str) -> Path | None:
    """Return the regular file ``<stem><ext>`` in ``folder`` for the first ext in SETTINGS_SUFFIXES."""
    candidates: dict[str, Path] = {}
    try:
        with os.scandir(folder) as listing:
            for dirent in listing:
                # This lists the whole inbox for every item taken in, and most entries are media: turn
                # them away with one cheap test (splitext and NFC on each entry made a 1,000-file inbox
                # take minutes to take in).
                if not dirent.name.lower().endswith(SETTINGS_SUFFIXES):
                    continue
                base, ext = os.path.splitext(dirent.name)
                ext = ext.lower()
                wanted = ext in SETTINGS_SUFFIXES and ext not in candidates and _same_name(base, stem)
                if wanted and dirent.is_file(follow_symlinks=False):
                    candidates[ext] = folder / dirent.name
    except (FileNotFoundError, NotADirectoryError):
        return None
    for ext in SETTINGS_SUFFIXES:
        if ext in candidates:
            return candidates[ext]
    return None


def settings_for(inbox: Path, media_name: str) -> Path | None:
    """Given an inbox and a media name in it, return its post settings file, or None if it has none.

    For a file ``clip.mp4``: ``clip.yaml``, else ``clip.yml``, else ``clip.txt`` beside it (extension
    case-insensitive, name compared after NFC normalisation). For a folder: ``post.yaml`` (or
    ``post.yml``, ``post.txt``) inside it. Only regular files count: a symlinked settings file is not
    followed.
    """
    media = inbox / media_name
    try:
        is_folder = stat.S_ISDIR(os.lstat(media).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_folder = False
    if is_folder:
        return _first_settings_file(media, FOLDER_SETTINGS_STEM)
    stem = os.path.splitext(media_name)[0]
    if not stem:
        return None
    return _first_settings_file(inbox, stem)


def photo_files(folder: Path, ignore_globs: Sequence[str] = ()) -> list[Path]:
    """Given a photo folder, return its images in natural name order (img2 before img10).

    Only regular files with a photo suffix count: ignored names, symlinks, sub-folders, the folder's
    post settings file and any other file are left out. Raise OSError if the folder cannot be read.
    """
    images: list[str] = []
    with os.scandir(folder) as listing:
        for dirent in listing:
            if is_ignored(dirent.name, ignore_globs) or _suffix(dirent.name) not in PHOTO_SUFFIXES:
                continue
            if dirent.is_file(follow_symlinks=False):
                images.append(dirent.name)
    images.sort(key=natural_key)
    return [folder / name for name in images]


_DIGITS = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Given a name, return a sort key that orders runs of digits by value: img2 < img10 < IMG11.

    Letters compare case-insensitively after NFC normalisation; the name itself is the last element,
    so two different names never tie and the order is total.
    """
    text = unicodedata.normalize("NFC", name).casefold()
    parts: list[tuple[int, int | str]] = []
    for index, piece in enumerate(_DIGITS.split(text)):
        if index % 2:
            parts.append((0, int(piece)))
        elif piece:
            parts.append((1, piece))
    parts.append((2, name))
    return tuple(parts)
