"""One daemon per state directory, and never a state directory on a network filesystem."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Sequence
from pathlib import Path

from watchfolder import fsinfo
from watchfolder.core.errors import StateLockedError, WatchfolderError

LOCK_NAME = "watchfolder.lock"


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state directory (mode 0700) when missing; its parent must exist."""
    if not state_dir.exists():
        try:
            state_dir.mkdir(mode=0o700)
        except FileNotFoundError as exc:
            raise WatchfolderError(f"state_dir {state_dir}: its parent folder does not exist") from exc
        except PermissionError as exc:
            raise WatchfolderError(f"state_dir {state_dir}: cannot create it (permission denied)") from exc


def refuse_network_state(state_dir: Path, *, allowed: bool, mounts: Sequence[fsinfo.Mount] | None = None) -> str | None:
    """Raise WatchfolderError when state_dir sits on a network filesystem and that is not allowed.

    Return the filesystem type found (for logs and `check`), or None when the mount table is unreadable.
    """
    table = fsinfo.read_mounts() if mounts is None else mounts
    mount = fsinfo.mount_for(state_dir, table)
    if mount is None:
        return None
    if fsinfo.is_network(mount.fs_type) and not allowed:
        raise WatchfolderError(
            f"state_dir {state_dir} is on a network filesystem ({mount.fs_type} at {mount.mount_point}): SQLite "
            "locking is not safe there and the state could be corrupted. Put state_dir on a local disk, or set "
            "allow_network_state_dir: true if you accept the risk."
        )
    return mount.fs_type


class StateLock:
    """An exclusive ``flock`` on ``state_dir/watchfolder.lock``, held for the daemon's lifetime."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StateLockedError naming the process that holds it. A moment's wait first:
        `status` may be looking at the lock (``held``) just then."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            for pause in (0.05, 0.1, 0.2, 0.0):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if not pause or exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    time.sleep(pause)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateLockedError(
                    f"another watchfolder daemon (pid {holder}) is already running on {self.path.parent}; "
                    "stop it first, or give this one its own state_dir"
                ) from exc
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def held(state_dir: Path, pid: int | None = None) -> bool:
    """True when a daemon holds the state lock of ``state_dir`` now: a look that writes nothing, so
    `status` can tell a running daemon from its lock instead of a heartbeat row. Where the lock file
    cannot be opened (another user's), whether process ``pid`` is alive."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except PermissionError:
        return _alive(pid)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)   # closing drops the shared lock taken just now, if it was
    return False


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True
