"""The file of the item a worker is on, open once for the trip (see ``openfile``): hashed, checked
before every chunk and read by the chunk uploader and the media host, never re-opened by name while it
still matches what was recorded."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from watchfolder.core.model import Item
from watchfolder.daemon.pacing import Stopped
from watchfolder.intake import entries
from watchfolder.openfile import Identity, NotTheFile, OpenFolder, OpenMedia, what_is

HASH_BLOCK = 1024 * 1024


def identity(item: Item) -> Identity:
    """What the item's record says its file is."""
    return Identity(item.ino, item.size, item.mtime_ns, item.ctime_ns, item.dev)


class ItemFile:
    """Holds at most one open file (the item's); ``close`` it when the trip ends or parks."""

    def __init__(self, stop: threading.Event, ignore_globs: Sequence[str] = ()) -> None:
        self.stop = stop
        self.ignore_globs = ignore_globs
        self.media: OpenMedia | None = None

    def open(self, item: Item, path: Path) -> OpenMedia:
        """The item's file, open: the one held when it still matches the record, else opened afresh at
        ``path`` and checked against it. Raise NotTheFile when the name holds something else."""
        expected = identity(item)
        if self.media is not None:
            if expected.matches(self.media.stat()):
                return self.media
            self.close()
        self.media = OpenMedia.open(path, expected)
        return self.media

    def for_init(self, item: Item, path: Path) -> OpenMedia | None:
        """The open file an init may read (a pulled video, a single photo); None for a photo folder."""
        return None if what_is(path) == "folder" else self.open(item, path)

    def changed(self, item: Item, path: Path) -> bool:
        """True when ``path`` no longer holds the file recorded (size, mtime, ctime, inode: a rewrite in
        place with its mtime put back shows in the change time), or is gone, or is a link."""
        try:
            media = self.open(item, path)
        except NotTheFile:
            return True
        return not media.still_at(path)

    def sha256(self, item: Item, path: Path) -> str:
        """The sha256 of the item's bytes, read from descriptors opened without following links: the
        file itself (kept open for the rest of the trip), or each image of a photo folder. Raise
        NotTheFile, or Stopped when the daemon stops meanwhile."""
        digest = hashlib.sha256()
        if what_is(path) != "folder":
            self._feed(digest, self.open(item, path))
            return digest.hexdigest()
        with OpenFolder(path) as folder:
            for image in entries.photo_files(path, self.ignore_globs):
                with folder.open(image.name) as media:
                    self._feed(digest, media)
        return digest.hexdigest()

    def _feed(self, digest: Any, media: OpenMedia) -> None:
        for block in media.blocks(HASH_BLOCK):
            if self.stop.is_set():
                raise Stopped
            digest.update(block)

    def after_move(self, item: Item, path: Path) -> dict[str, int] | None:
        """Our own move changed the file's change time (a link count) or its inode (a copy to another
        filesystem): return the fields to record (``ino``, ``ctime_ns``, ``dev``) once the new name is proven to
        hold the same file, else None (the next check then sees the change)."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if what_is(path) != "file":
            return None
        if self.media is not None and not os.path.samestat(info, self.media.stat()):
            held = self.media.stat()
            if (held.st_size, held.st_mtime_ns) != (info.st_size, info.st_mtime_ns):
                return None
            self.close()  # a copy: the next open takes the new file by its new identity
        elif (info.st_size, info.st_mtime_ns) != (item.size, item.mtime_ns):
            return None
        return {"ino": info.st_ino, "ctime_ns": info.st_ctime_ns, "dev": info.st_dev}

    def close(self) -> None:
        if self.media is not None:
            self.media.close()
            self.media = None
