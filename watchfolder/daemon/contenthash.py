"""An item's content, read as few times as it can be: the cheap dedupe key, and the SHA-256 built from the
very blocks the chunk uploader sends.

The key is the size and the SHA-256 of the first and the last MiB (of the whole file when it is at most
2 MiB): identical files always share it, and it costs two reads of a MiB however large the file is. Only
when it matches an earlier item is the whole file read before the init (``dedupe``).

``RunningHash`` is the SHA-256 of a file's bytes ``0 .. position - 1``. ``sendbody.send_body`` feeds it
every block it sends, in order; before each chunk ``at`` puts it at the chunk's first byte: a chunk
that starts past it (a resumed upload, a 416 that moves the offset forward) is caught up by reading the
missing range from the same descriptor, one that starts before it (a chunk sent again after a failed or
partial send, a 416 that moves back, a new init) goes back to the hash taken at the last chunk's start,
or to byte 0 when it must go back further (SHA-256 cannot rewind). Whatever failed, it never counts a
byte twice, so when it reaches the size it equals a full read.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from watchfolder.core.errors import MediaError
from watchfolder.daemon.pacing import Stopped
from watchfolder.openfile import OpenMedia

EDGE = 1024 * 1024    # the key reads this much at each end of the file
BLOCK = 1024 * 1024   # catch-up reads


def quick_key(media: OpenMedia) -> str:
    """The dedupe key of the open file: ``<size>:<sha256 of the first and last MiB>``."""
    size = media.stat().st_size
    digest = hashlib.sha256()
    if size <= 2 * EDGE:
        _feed(digest, media.fd, 0, size, None)
    else:
        _feed(digest, media.fd, 0, EDGE, None)
        _feed(digest, media.fd, size - EDGE, size, None)
    return f"{size}:{digest.hexdigest()}"


def folder_key(sha256: str) -> str:
    """The key of a photo folder: its full hash (a folder is read whole before its init anyway)."""
    return f"sha256:{sha256}"


def _feed(digest: Any, fd: int, start: int, end: int, stop: threading.Event | None) -> int:
    """Hash bytes ``start .. end - 1`` of ``fd``; return how many were read (fewer if the file is shorter)."""
    buffer = bytearray(min(BLOCK, max(1, end - start)))
    view = memoryview(buffer)
    offset = start
    while offset < end:
        if stop is not None and stop.is_set():
            raise Stopped
        count = os.preadv(fd, [view[: min(BLOCK, end - offset)]], offset)
        if not count:
            break
        digest.update(view[:count])
        offset += count
    return offset - start


class RunningHash:
    """SHA-256 of bytes ``0 .. position - 1`` of one item's file, fed in order (see the module's docstring)."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop
        self._hash = hashlib.sha256()
        self.position = 0
        self._mark: tuple[Any, int] = (self._hash.copy(), 0)
        self.caught_up = 0   # bytes read from disk to catch up (not the bytes sent)

    def update(self, data: bytes | memoryview, /) -> None:
        """One block just read for sending: the bytes at ``position``."""
        self._hash.update(data)
        self.position += len(data)

    def at(self, offset: int, fd: int) -> None:
        """Make the hash cover exactly bytes ``0 .. offset - 1`` of the file open as ``fd``, before the
        bytes from ``offset`` on are fed; remember this point as the one to go back to."""
        if self.position > offset:
            mark, marked = self._mark
            if marked <= offset:
                self._hash, self.position = mark.copy(), marked
            else:
                self._hash, self.position = hashlib.sha256(), 0
        if self.position < offset:
            read = _feed(self._hash, fd, self.position, offset, self.stop)
            self.position += read
            self.caught_up += read
            if self.position < offset:
                raise MediaError("file_changed", f"the file ends at byte {self.position}, before byte {offset}")
        self._mark = (self._hash.copy(), self.position)

    def finish(self, size: int, fd: int) -> str:
        """The SHA-256 of the whole ``size``-byte file (caught up to its end if it is not there yet)."""
        self.at(size, fd)
        return self._hash.hexdigest()
