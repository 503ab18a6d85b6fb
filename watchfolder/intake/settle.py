"""Is a dropped file (or photo folder) finished? Stability of its fingerprint over time, decided in pure code.

An item is settled once its fingerprint (size, mtime, ctime and inode, or the folder's aggregate) has
stayed the same for ``settle_seconds``. Any change restarts the window: writers that write, close,
reopen and write again, and SMB copies that set the source's mtime (so only size and ctime move),
both look finished at some instant, and only a quiet stretch tells them apart.

There is no retry cap: a file that is written for hours stays WAITING, and is settled the first time
it has been quiet long enough (a cap that drops the file is the failure paperless and namer users hit).
Time is a parameter: ``now`` is any monotonic clock in seconds, passed in by the caller.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from watchfolder.core.model import Item
from watchfolder.intake.ignore import is_ignored


@dataclass(frozen=True)
class Fingerprint:
    """What must stay the same for an item to count as finished.

    For a file, its own lstat. For a folder, an aggregate over its non-ignored entries: total size,
    the newest mtime and ctime, a hash of every (name, inode) folded into ``ino``, and ``count``.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    count: int
    dev: int | None = None


def differs(now: Fingerprint, recorded: Item) -> bool:
    """True when ``now`` is not the file recorded: another size, mtime, ctime or inode, or another device
    where both are known (a device not recorded, or a folder's aggregate, is compared by the rest)."""
    if (now.size, now.mtime_ns, now.ctime_ns, now.ino) != (recorded.size, recorded.mtime_ns, recorded.ctime_ns,
                                                          recorded.ino):
        return True
    return now.dev is not None and recorded.dev is not None and now.dev != recorded.dev


def fingerprint(path: Path, ignore_globs: Sequence[str] = ()) -> Fingerprint | None:
    """Given a path, return its fingerprint, or None if it does not exist (any more).

    A symlink is fingerprinted as the link itself, never followed. For a folder, only its direct
    entries count (a photo set is one level deep); ignored names (``.DS_Store``, ``@eaDir``) are left
    out so NAS indexers writing metadata do not keep the folder unsettled. Raise OSError for failures
    other than "not found" (a share outage), so an outage is not mistaken for removal.
    """
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISDIR(info.st_mode):
        return Fingerprint(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, 1, info.st_dev)
    return _folder_fingerprint(path, ignore_globs)


def _folder_fingerprint(folder: Path, ignore_globs: Sequence[str]) -> Fingerprint | None:
    size = mtime_ns = ctime_ns = count = 0
    members: list[tuple[bytes, int]] = []
    try:
        with os.scandir(folder) as listing:
            for dirent in listing:
                if is_ignored(dirent.name, ignore_globs):
                    continue
                try:
                    info = dirent.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while listing: the next observation sees the new state
                count += 1
                if not stat.S_ISDIR(info.st_mode):
                    size += info.st_size
                mtime_ns = max(mtime_ns, info.st_mtime_ns)
                ctime_ns = max(ctime_ns, info.st_ctime_ns)
                members.append((os.fsencode(dirent.name), info.st_ino))
    except (FileNotFoundError, NotADirectoryError):
        return None
    # A rename inside the folder (img.jpg.part → img.jpg) changes no size and may keep every time;
    # hashing the names with their inodes makes it a change. blake2b rather than hash(): stable
    # across runs and not randomised per process. 7 bytes, so the value fits SQLite's signed 64-bit
    # INTEGER column the item's inode is stored in (8 bytes overflow it half the time).
    digest = hashlib.blake2b(digest_size=7)
    for name, ino in sorted(members):
        digest.update(name + b"\0" + str(ino).encode() + b"\0")
    return Fingerprint(size, mtime_ns, ctime_ns, int.from_bytes(digest.digest(), "big"), count)


class VerdictKind(enum.StrEnum):
    SETTLED = "settled"
    WAITING = "waiting"
    GONE = "gone"


@dataclass(frozen=True)
class Verdict:
    """The answer of one observation.

    ``kind`` is "settled", "waiting" or "gone" (a StrEnum, so it compares equal to those strings);
    ``until`` (waiting only) is the earliest time at which another observation can settle it.
    """

    kind: VerdictKind
    until: float | None = None

    @property
    def settled(self) -> bool:
        return self.kind is VerdictKind.SETTLED

    @property
    def waiting(self) -> bool:
        return self.kind is VerdictKind.WAITING

    @property
    def gone(self) -> bool:
        return self.kind is VerdictKind.GONE


SETTLED = Verdict(VerdictKind.SETTLED)
GONE = Verdict(VerdictKind.GONE)


def WAITING(until: float) -> Verdict:  # upper case: reads as a verdict, like SETTLED and GONE
    """Return the verdict "not settled yet; observe again at ``until``"."""
    return Verdict(VerdictKind.WAITING, until)


@dataclass
class _Track:
    fingerprint: Fingerprint
    stable_since: float            # when the current fingerprint was first seen
    changing_since: float | None   # first observation that saw a change, in this unsettled stretch


class Settler:
    """Tracks fingerprints per key (an item name) and says when each has been quiet long enough."""

    def __init__(self, settle_seconds: float) -> None:
        """Given the quiet time an item needs (seconds, ≥ 0), return an empty tracker."""
        if settle_seconds < 0:
            raise ValueError(f"settle_seconds must be >= 0, got {settle_seconds}")
        self.settle_seconds = float(settle_seconds)
        self._tracks: dict[str, _Track] = {}

    def observe(self, key: str, fp: Fingerprint | None, now: float) -> Verdict:
        """Given a key, its fingerprint now (None: it is gone) and the time, return the verdict.

        SETTLED when the same fingerprint has been observed for at least ``settle_seconds`` (so an item
        needs two observations that far apart, unless settle_seconds is 0). WAITING(until) when it is
        new or changed since the last observation (the window restarts at ``now``) or not quiet for
        long enough yet. GONE when ``fp`` is None; the key is forgotten.
        """
        if fp is None:
            self._tracks.pop(key, None)
            return GONE
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(fp, now, None)
        elif fp != track.fingerprint:
            track.fingerprint = fp
            track.stable_since = now
            if track.changing_since is None:
                track.changing_since = now
        elif now < track.stable_since:
            # A clock that went backwards must not settle a file early: restart the window.
            track.stable_since = now
        if now - track.stable_since >= self.settle_seconds:
            track.changing_since = None
            return SETTLED
        return WAITING(track.stable_since + self.settle_seconds)

    def forget(self, key: str) -> None:
        """Drop what is known about ``key`` (handed on, cancelled); a later observation starts afresh."""
        self._tracks.pop(key, None)

    def growing_since(self, key: str) -> float | None:
        """Return when ``key`` was first seen changing in its current unsettled stretch, else None.

        For status lines such as "still being written since 10:02"; None for unknown keys, for keys
        seen only once, and for keys whose fingerprint has not changed since they settled.
        """
        track = self._tracks.get(key)
        return track.changing_since if track is not None else None

    def __contains__(self, key: object) -> bool:
        return key in self._tracks

    def __len__(self) -> int:
        return len(self._tracks)
