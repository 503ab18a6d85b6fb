"""Facts about filesystems: which mount a path is on, whether it is a network share, the inotify limits.

Used to choose the watch method per inbox (inotify never reports writes that other machines make to
an SMB/NFS share, so those need polling) and by ``watchfolder check`` to explain the choice. Reads
only ``/proc``; every function that parses takes text so tests can feed it samples.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROC_MOUNTS = ("/proc/self/mounts", "/proc/mounts")
INOTIFY_PROC_DIR = Path("/proc/sys/fs/inotify")


@dataclass(frozen=True)
class Mount:
    """One line of the mount table: where, what type, mounted from what."""

    mount_point: str
    fs_type: str
    source: str


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in mount fields as \040, \011, \012, \134.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """Given the text of /proc/self/mounts (or /proc/mounts, fstab-like), return its mounts in order.

    Octal escapes (``\\040`` for a space) are decoded. Blank, comment and malformed lines are skipped.
    Order is kept: when two mounts share a mount point, the later one is on top.
    """
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        mounts.append(Mount(mount_point=_unescape(fields[1]), fs_type=_unescape(fields[2]),
                            source=_unescape(fields[0])))
    return mounts


def read_mounts() -> list[Mount]:
    """Return this process's mount table (/proc/self/mounts, else /proc/mounts); [] if neither is readable."""
    for candidate in PROC_MOUNTS:
        try:
            # surrogateescape: mount points are paths, and os.fsdecode decodes paths the same way.
            with open(candidate, encoding="utf-8", errors="surrogateescape") as handle:
                return parse_mounts(handle.read())
        except OSError:
            continue
    return []


def mount_for(path: Path, mounts: Sequence[Mount]) -> Mount | None:
    """Given a path and a mount table, return the mount it lives on: the longest matching mount point.

    The path is resolved first (symlinks followed, and it need not exist), so a symlink into a share
    counts as the share. Among mounts on the same point the last one listed wins (it is on top).
    Return None if no mount matches (an empty table).
    """
    target = os.fsdecode(os.path.realpath(path))
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        inside = target == point or point == "/" or target.startswith(point + "/")
        if inside and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best


# Filesystems where the files can change without this kernel seeing the write: inotify stays silent
# for them (watchdog's README, paperless-ngx #1975, systemd.path(5)).
NETWORK_FS_TYPES: frozenset[str] = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "coda",
    "9p", "virtiofs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "orangefs",
    "davfs", "sshfs",
    "fuse.sshfs", "fuse.rclone", "fuse.glusterfs", "fuse.davfs2", "fuse.s3fs", "fuse.gcsfuse",
    "fuse.goofys", "fuse.juicefs", "fuse.cephfs", "fuse.ceph-fuse", "fuse.smbnetfs", "fuse.curlftpfs",
    "fuse.seaweedfs", "fuse.moosefs", "fuse.lizardfs", "fuse.objectivefs", "fuse.blobfuse",
})

# FUSE filesystems backed by a local disk. Every other FUSE type counts as network: a FUSE daemon can
# serve anything, and polling a small inbox costs little, while inotify on a remote one misses files.
LOCAL_FUSE_TYPES: frozenset[str] = frozenset({"fuseblk", "fuse.ntfs-3g", "fuse.exfat", "fuse.lxcfs"})


def is_network(fs_type: str) -> bool:
    """Given a filesystem type from the mount table, return True if writes from other machines can reach it.

    Known network and cluster filesystems, and any FUSE type not known to sit on a local disk.
    """
    kind = fs_type.strip().lower()
    if kind in NETWORK_FS_TYPES:
        return True
    if kind in LOCAL_FUSE_TYPES:
        return False
    return kind == "fuse" or kind.startswith("fuse.")


OBSERVER_CHOICES = ("auto", "inotify", "polling")


def choose_observer(configured: str, path: Path, mounts: Sequence[Mount]) -> tuple[str, str]:
    """Given ``watch.observer`` ("auto", "inotify" or "polling"), an inbox and the mount table, return
    (method, reason): method is "inotify" or "polling", reason one sentence for the log and ``check``.

    "auto" polls on network filesystems and when the filesystem cannot be told (polling works
    everywhere), and uses inotify on local disks. An explicit choice is kept, except that inotify
    is impossible off Linux. Raise ValueError for any other ``configured`` value.
    """
    if configured not in OBSERVER_CHOICES:
        raise ValueError(f"watch.observer must be one of {', '.join(OBSERVER_CHOICES)}, got {configured!r}")
    if configured == "polling":
        return "polling", "watch.observer is set to polling"
    if not sys.platform.startswith("linux"):
        return "polling", f"inotify is not available on {sys.platform}"
    mount = mount_for(path, mounts)
    where = f"{mount.fs_type} at {mount.mount_point}" if mount is not None else ""
    if configured == "inotify":
        if mount is not None and is_network(mount.fs_type):
            return "inotify", (f"watch.observer is set to inotify, but the inbox is on {where}: "
                               "files written by other machines will only be found by the periodic rescan")
        return "inotify", "watch.observer is set to inotify"
    if mount is None:
        return "polling", "the inbox's filesystem type is unknown (no mount table), and polling works everywhere"
    if is_network(mount.fs_type):
        return "polling", f"the inbox is on {where}, a network filesystem where inotify misses remote writes"
    return "inotify", f"the inbox is on {where}, a local filesystem"


INOTIFY_LIMIT_NAMES = ("max_user_watches", "max_user_instances", "max_queued_events")


def inotify_limits(proc_dir: Path = INOTIFY_PROC_DIR) -> dict[str, int | None]:
    """Return the host's inotify limits by name (see INOTIFY_LIMIT_NAMES); None for any that cannot be read."""
    limits: dict[str, int | None] = {}
    for name in INOTIFY_LIMIT_NAMES:
        try:
            limits[name] = int((proc_dir / name).read_text().strip())
        except (OSError, ValueError):
            limits[name] = None
    return limits


# What to suggest: generous values that cost a few hundred KiB of kernel memory at most.
_SUGGESTED = {"max_user_watches": 524288, "max_user_instances": 512}


def inotify_limit_advice(error_number: int, limits: dict[str, int | None] | None = None) -> str:
    """Given the errno of a failed inotify call (ENOSPC or EMFILE), return what happened and how to fix it.

    Names the sysctl, its current value when known, and says it is raised on the host (a container
    shares the host kernel's limits).
    """
    name = "max_user_instances" if error_number == errno.EMFILE else "max_user_watches"
    what = "instance" if error_number == errno.EMFILE else "watch"
    current = (limits or {}).get(name)
    now = f" (now {current})" if current is not None else ""
    wanted = _SUGGESTED[name]
    return (f"the inotify {what} limit fs.inotify.{name}{now} is reached. To use inotify, raise it on the "
            f"host, not inside a container: `sysctl fs.inotify.{name}={wanted}`, and keep it across reboots "
            f"with a line `fs.inotify.{name}={wanted}` in /etc/sysctl.d/90-watchfolder.conf")
