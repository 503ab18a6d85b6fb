"""Staging: place files under unguessable names for TikTok to pull, remember when each may go, remove them.

A staged file gets a name with 192 random bits and lives either in ``staging_dir`` (served by the
built-in server, see ``server``) or in ``publish_dir``, a folder an existing web server already
serves. An index file in ``staging_dir`` remembers when each name expires, across restarts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from watchfolder.openfile import OpenMedia

INDEX_NAME = "index.json"
STAGED_NAME = re.compile(r"[A-Za-z0-9_-]{32}(\.[a-z0-9]{1,8})?")  # token_urlsafe(24) + an optional extension
_TEMP_PREFIX, _TEMP_SUFFIX = ".watchfolder-", ".tmp"
_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Staged:
    """One staged file: its public name, the URL TikTok pulls, where it lies, and when it may go."""

    name: str
    url: str
    path: Path
    expires_at: float


class Staging:
    """Stages files under fresh names in ``files_dir``, keeps the expiry index in ``staging_dir``, removes them."""

    def __init__(self, *, url_prefix: str, staging_dir: Path, files_dir: Path, pull_window_seconds: float) -> None:
        """Given where files go and how long TikTok may take, prepare (creating staging_dir) and read the index."""
        self.url_prefix = url_prefix
        self.staging_dir = Path(staging_dir)
        self.files_dir = Path(files_dir)
        self.pull_window_seconds = pull_window_seconds
        self._lock = threading.Lock()
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self._index = self._read_index()

    def stage(self, source: Path, *, now: float, suffix: str | None = None, media: OpenMedia | None = None) -> Staged:
        """Given a file and the time, place it under a fresh unguessable name and return where TikTok finds it.

        The name is 24 random bytes (URL-safe) plus ``suffix`` or the source's lower-cased extension.
        The file is hard-linked when that is possible and changes nothing about the source, else
        copied (temp file, then rename); it is readable by all (0644) and nothing is overwritten.
        With ``media`` (the source, already open), the bytes come from that descriptor: a link is kept
        only if it proves to be the same file, and a name swapped for a symlink is never followed.
        Raise ValueError for a bad suffix, OSError if the source cannot be read or placed.
        """
        extension = (suffix if suffix is not None else Path(source).suffix).lower()
        if extension and not re.fullmatch(r"\.[a-z0-9]{1,8}", extension):
            raise ValueError(f"cannot stage with the extension {extension!r}")
        name = secrets.token_urlsafe(24) + extension
        expires_at = now + self.pull_window_seconds
        with self._lock:
            # The index entry comes first: a crash between the two steps leaves an entry for a
            # missing file (harmless), never a file that no sweep knows about.
            self._index[name] = expires_at
            self._write_index()
        if media is not None:
            self._place_open(Path(source), media, self.files_dir / name)
        else:
            self._place(Path(source), self.files_dir / name)
        return Staged(name, self.url_prefix + name, self.files_dir / name, expires_at)

    def _place(self, source: Path, dest: Path) -> None:
        if stat.S_IMODE(os.stat(source).st_mode) & 0o044 == 0o044:
            # Already readable by all, so a hard link needs no chmod, which would change the user's file too.
            try:
                os.link(source, dest)
                return
            except FileExistsError:
                raise
            except OSError:
                pass  # another filesystem (EXDEV), or one without hard links: copy instead
        temp = dest.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}")
        try:
            with open(source, "rb") as src, open(temp, "xb") as dst:
                shutil.copyfileobj(src, dst, _BLOCK)
                os.fchmod(dst.fileno(), 0o644)
            if os.path.lexists(dest):  # 192 random bits make this unreachable; it guards the promise anyway
                raise FileExistsError(f"staged name already taken: {dest.name}")
            os.rename(temp, dest)
        finally:
            temp.unlink(missing_ok=True)

    def _place_open(self, source: Path, media: OpenMedia, dest: Path) -> None:
        if stat.S_IMODE(media.stat().st_mode) & 0o044 == 0o044:
            try:
                os.link(source, dest, follow_symlinks=False)
            except FileExistsError:
                raise
            except OSError:
                pass  # another filesystem, no hard links, or the name is gone: copy from the descriptor
            else:
                if os.path.samestat(os.lstat(dest), media.stat()):
                    return
                os.unlink(dest)  # the name held another file (or a link) by now: never serve that
        temp = dest.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}")
        try:
            with open(temp, "xb") as dst:
                for block in media.blocks(_BLOCK):
                    dst.write(block)
                os.fchmod(dst.fileno(), 0o644)
            if os.path.lexists(dest):
                raise FileExistsError(f"staged name already taken: {dest.name}")
            os.rename(temp, dest)
        finally:
            temp.unlink(missing_ok=True)

    def release(self, names: Iterable[str]) -> None:
        """Given staged names, remove their files and index entries (names that are not ours are ignored)."""
        with self._lock:
            for name in names:
                if STAGED_NAME.fullmatch(name):
                    (self.files_dir / name).unlink(missing_ok=True)
                    self._index.pop(name, None)
            self._write_index()

    def sweep(self, now: float) -> int:
        """Given the time, remove staged files whose pull window has passed; return how many were removed.

        Expiry comes from the index; in the private staging dir, staged-looking files the index does
        not know (and leftover temp files) expire by mtime. In publish_dir only indexed names and our
        temp files are touched, since an existing web server's folder holds other people's files.
        """
        removed = 0
        with self._lock:
            for name, expires_at in list(self._index.items()):
                if expires_at <= now:
                    removed += _unlink(self.files_dir / name)
                    del self._index[name]
            for entry in os.scandir(self.files_dir):
                ours = entry.name.startswith(_TEMP_PREFIX) and entry.name.endswith(_TEMP_SUFFIX)
                stray = self.files_dir == self.staging_dir and bool(STAGED_NAME.fullmatch(entry.name))
                candidate = (ours or (stray and entry.name not in self._index)) and entry.is_file(follow_symlinks=False)
                if candidate and entry.stat(follow_symlinks=False).st_mtime + self.pull_window_seconds <= now:
                    removed += _unlink(Path(entry.path))
            self._write_index()
        return removed

    def _read_index(self) -> dict[str, float]:
        try:
            data = json.loads((self.staging_dir / INDEX_NAME).read_text(encoding="utf-8"))
            return {str(k): float(v) for k, v in data["expires_at"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}  # a damaged index: staging-dir files then expire by mtime

    def _write_index(self) -> None:
        temp = self.staging_dir / f"{_TEMP_PREFIX}index{_TEMP_SUFFIX}"
        temp.write_text(json.dumps({"schema": 1, "expires_at": self._index}, sort_keys=True), encoding="utf-8")
        os.replace(temp, self.staging_dir / INDEX_NAME)


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
