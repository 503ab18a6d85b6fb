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


class FolderView:
    """One listing of a folder (one ``os.scandir``), asked many times: the settings files in it by
    stem, and its names by stem. Taken once per pass of intake (``Listings``) so that taking in a
    thousand files of one inbox lists it once, not once per file (a listing per file made intake
    quadratic); a settings file that lands later is seen by the next pass's listing.

    Raise OSError if the folder cannot be read (not a missing folder: that is an empty view)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: list[str] = []
        # NFC stem -> {lowercased ext: name}: the first regular file of each settings extension.
        self._settings: dict[str, dict[str, str]] = {}
        self._stems: dict[str, list[str]] | None = None
        try:
            with os.scandir(folder) as listing:
                for dirent in listing:
                    self.names.append(dirent.name)
                    # Most entries are media: turn them away with one cheap test before splitext and NFC.
                    if not dirent.name.lower().endswith(SETTINGS_SUFFIXES):
                        continue
                    base, ext = os.path.splitext(dirent.name)
                    ext = ext.lower()
                    if ext not in SETTINGS_SUFFIXES:
                        continue
                    try:
                        regular = dirent.is_file(follow_symlinks=False)
                    except FileNotFoundError:
                        continue   # removed between readdir and lstat
                    if regular:
                        self._settings.setdefault(_nfc(base), {}).setdefault(ext, dirent.name)
        except (FileNotFoundError, NotADirectoryError):
            pass

    def settings_file(self, stem: str) -> Path | None:
        """The regular file ``<stem><ext>`` here for the first ext in SETTINGS_SUFFIXES (stem compared after
        NFC, ext case-insensitively), or None."""
        found = self._settings.get(_nfc(stem))
        if not found:
            return None
        for ext in SETTINGS_SUFFIXES:
            if ext in found:
                return self.folder / found[ext]
        return None

    def with_stem(self, stem: str) -> list[str]:
        """The names here whose stem (the name without its last extension) is exactly ``stem``."""
        if self._stems is None:
            self._stems = {}
            for name in self.names:
                self._stems.setdefault(os.path.splitext(name)[0], []).append(name)
        return self._stems.get(stem, [])


class Listings:
    """The folders listed so far in one pass of intake, each listed at most once; a new pass makes a new one."""

    def __init__(self) -> None:
        self._views: dict[Path, FolderView] = {}

    def view(self, folder: Path) -> FolderView:
        view = self._views.get(folder)
        if view is None:
            view = self._views[folder] = FolderView(folder)
        return view


def _nfc(name: str) -> str:
    # macOS clients write decomposed (NFD) names; a clip.mp4 and its clip.yaml may differ only in that.
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def settings_for(inbox: Path, media_name: str, listings: Listings | None = None) -> Path | None:
    """Given an inbox and a media name in it, return its post settings file, or None if it has none.

    For a file ``clip.mp4``: ``clip.yaml``, else ``clip.yml``, else ``clip.txt`` beside it (extension
    case-insensitive, name compared after NFC normalisation). For a folder: ``post.yaml`` (or
    ``post.yml``, ``post.txt``) inside it. Only regular files count: a symlinked settings file is not
    followed. ``listings``: the pass's listings to reuse (else the folder is listed now).
    """
    media = inbox / media_name
    try:
        is_folder = stat.S_ISDIR(os.lstat(media).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_folder = False
    lister = listings or Listings()
    if is_folder:
        return lister.view(media).settings_file(FOLDER_SETTINGS_STEM)
    stem = os.path.splitext(media_name)[0]
    if not stem:
        return None
    return lister.view(inbox).settings_file(stem)


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
