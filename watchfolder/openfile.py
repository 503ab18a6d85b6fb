"""One media file, one descriptor: open an inbox entry without following links and prove it is the
file that was taken in before a byte of it is read.

An inbox on a share is written by many hands. Between the moment a file is taken in and its last
chunk, its name may be replaced by a symlink (to a token file, to ``/etc/shadow``), a folder or
another file. Reading by path would then read whatever the name points to now. So media is read only
through an :class:`OpenMedia`: opened with ``O_NOFOLLOW`` (a symlink is refused by the kernel, not by
a check that can race), required to be a regular file, and compared with the identity recorded at
intake (device where known, inode, size, mtime and ctime) with ``fstat`` on the descriptor itself.
Hashing, sniffing, chunk uploads and media-host staging all read from that descriptor.

A photo folder is opened the same way (``O_NOFOLLOW | O_DIRECTORY``) and each image inside it is
opened relative to the folder's descriptor, again with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchfolder.core.errors import MediaError
from watchfolder.core.text import display_name

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang open()


@dataclass(frozen=True)
class Identity:
    """What makes a file the one taken in. ``dev`` None: not recorded (compared by the rest only)."""

    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    dev: int | None = None

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        return cls(info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_dev)

    def matches(self, info: os.stat_result) -> bool:
        """True when ``info`` (an fstat or lstat) describes this file with the same content stamps."""
        same = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns) == (
            self.ino, self.size, self.mtime_ns, self.ctime_ns)
        return same and (self.dev is None or self.dev == info.st_dev)


class NotTheFile(MediaError):
    """The name no longer holds the file taken in. ``what`` says what it holds now: ``symlink``,
    ``folder``, ``special`` (FIFO, device, socket), ``gone`` or ``changed`` (another or a rewritten file)."""

    def __init__(self, what: str, name: str) -> None:
        shown = display_name(name)
        messages = {
            "symlink": f"{shown} was replaced by a symlink; watchfolder never follows links, nothing of its "
                       "target was read",
            "folder": f"{shown} was replaced by a folder",
            "special": f"{shown} is not a regular file any more (a pipe, device or socket)",
            "gone": f"{shown} is gone",
            "changed": f"{shown} is not the file that was taken in (its content or identity changed)",
        }
        super().__init__("file_changed", messages[what])
        self.what = what


def what_is(path: Path) -> str:
    """Given a path, say what it is without following it: ``file``, ``symlink``, ``folder``,
    ``special`` or ``gone``. Other OS errors (a share outage) propagate."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "gone"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else "special"


def _open(path: Path | str, *, dir_fd: int | None = None, name: str) -> int:
    try:
        return os.open(path, _FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotTheFile("gone", name) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotTheFile("symlink", name) from None
        raise


class OpenMedia:
    """One regular file, open for reading, proven to be the expected one. Close it (or use ``with``)."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self._file: io.BufferedReader | None = None

    @classmethod
    def open(cls, path: Path, expected: Identity | None = None, *, dir_fd: int | None = None) -> OpenMedia:
        """Open ``path`` without following a link; require a regular file matching ``expected``
        (when given). Raise NotTheFile when it is not, OSError for other failures (EACCES, a share away)."""
        name = Path(path).name
        fd = _open(path, dir_fd=dir_fd, name=name)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise NotTheFile("folder", name)
            if not stat.S_ISREG(info.st_mode):
                raise NotTheFile("special", name)
            if expected is not None and not expected.matches(info):
                raise NotTheFile("changed", name)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, name)

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    @property
    def identity(self) -> Identity:
        return Identity.of(self.stat())

    def check(self, expected: Identity) -> None:
        """Raise NotTheFile("changed") unless the open file still matches ``expected`` (rewritten
        in place, truncated, touched: anything that changes its stamps)."""
        if not expected.matches(self.stat()):
            raise NotTheFile("changed", self.name)

    def still_at(self, path: Path) -> bool:
        """True when ``path`` names this very file now (not a link, not a replacement)."""
        try:
            return os.path.samestat(os.lstat(path), self.stat()) and not os.path.islink(path)
        except (FileNotFoundError, NotADirectoryError):
            return False

    @property
    def file(self) -> io.BufferedReader:
        """A binary file object over the descriptor (seek/read), for code that reads file objects.
        It shares the descriptor: do not close it, close this OpenMedia."""
        if self._file is None:
            self._file = open(self.fd, "rb", closefd=False)  # noqa: SIM115 - closed in close()
        return self._file

    @property
    def proc_path(self) -> Path:
        """A path that opens this same file whatever its name holds now (Linux ``/proc/self/fd``),
        for readers that take a path (Pillow, the header sniffers); never for a subprocess."""
        return Path(f"/proc/self/fd/{self.fd}")

    def blocks(self, size: int = 1024 * 1024, first: int = 0) -> Iterator[memoryview]:
        """Yield the file's bytes from ``first`` in blocks of ``size`` (one reused buffer)."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        offset = first
        while True:
            count = os.preadv(self.fd, [buffer], offset)
            if not count:
                return
            offset += count
            yield view[:count]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OpenMedia:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class OpenFolder:
    """A photo folder opened without following a link; its images are opened relative to it."""

    def __init__(self, path: Path) -> None:
        name = Path(path).name
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotTheFile("gone", name) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotTheFile("symlink", name) from None
            if exc.errno == errno.ENOTDIR:
                raise NotTheFile("changed", name) from None
            raise
        self.name = name

    def open(self, image: str) -> OpenMedia:
        """Open one image of the folder by its name (no link followed, regular files only)."""
        return OpenMedia.open(Path(image), dir_fd=self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> OpenFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Identity", "NotTheFile", "OpenFolder", "OpenMedia", "what_is"]
