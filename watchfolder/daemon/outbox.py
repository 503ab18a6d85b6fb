"""Moving items between an account's folders and writing sidecars; nothing here ever overwrites a file."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FOLDERS = ("inbox", "processing", "done", "failed")
NAME_MAX = 255                   # bytes in one name on the filesystems a NAS exports (ext4, btrfs, zfs, SMB, NFS)
SIDECAR_ROOM = len(".json")      # what a name in done/ or failed/ must leave free for its sidecar's name


def split_name(name: str) -> tuple[str, str]:
    """Split ``clip.mp4`` into (``clip``, ``.mp4``); a folder or a dot-less name has no extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, f".{ext}"


def suffixed(name: str, number: int, room: int = 0) -> str:
    """``clip.mp4`` with number 2 → ``clip (2).mp4``; number 1 → the name itself.

    When the result plus ``room`` bytes would not fit in NAME_MAX bytes, the stem is shortened (the
    extension kept), so a very long name can still move and get its sidecar (``room=SIDECAR_ROOM``).
    """
    if number <= 1 and len(os.fsencode(name)) + room <= NAME_MAX:
        return name
    stem, ext = split_name(name)
    tail = f" ({number}){ext}" if number > 1 else ext
    limit = NAME_MAX - room
    while stem and len(os.fsencode(stem + tail)) > limit:
        stem = stem[:-1]
    fitted = stem + tail
    while len(os.fsencode(fitted)) > limit:   # an extension longer than the limit itself
        fitted = fitted[:-1]
    return fitted


def free_number(folder: Path, names: list[str], *, sidecar: bool = True, room: int = 0) -> int:
    """Return the smallest n ≥ 1 such that every name (suffixed with n), and its sidecar, is free in folder."""
    number = 1
    while True:
        candidates = [suffixed(name, number, room) for name in names]
        if sidecar and names:
            candidates.append(f"{suffixed(names[0], number, room)}.json")
        if not any(os.path.lexists(folder / candidate) for candidate in candidates):
            return number
        number += 1


def move_no_overwrite(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists; raise FileExistsError if it does.

    Files use link + unlink, which fails atomically when the target exists; folders (photo sets)
    and filesystems without hard links fall back to a checked rename.
    """
    if src.is_dir() and not src.is_symlink():
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", str(dst))
        os.rename(src, dst)
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", str(dst)) from exc
        os.rename(src, dst)
        return
    os.unlink(src)


def move_item(
    src_folder: Path, dst_folder: Path, name: str, settings_name: str | None = None, *, room: int = 0
) -> tuple[str, str | None]:
    """Move media ``name`` (and its settings file) from one folder to another under free names.

    Return the names they got in ``dst_folder``. The media and its settings file get the same suffix,
    so ``clip (2).mp4`` keeps ``clip (2).yaml`` beside it. A settings file that vanished is skipped.
    ``room``: bytes each new name leaves free within NAME_MAX (see ``suffixed``).
    """
    names = [name] + ([settings_name] if settings_name and settings_name != name else [])
    number = free_number(dst_folder, names, room=room)
    new_name = suffixed(name, number, room)
    move_no_overwrite(src_folder / name, dst_folder / new_name)
    new_settings = None
    if settings_name and settings_name != name:
        new_settings = suffixed(settings_name, number, room)
        try:
            move_no_overwrite(src_folder / settings_name, dst_folder / new_settings)
        except FileNotFoundError:
            new_settings = None
    return new_name, new_settings


def write_sidecar(folder: Path, media_name: str, data: Mapping[str, Any]) -> Path:
    """Write ``<media_name>.json`` whole: a temp file in the same folder, fsync, rename, fsync the folder.

    An existing sidecar of that name is never replaced: the caller picked a free name with ``free_number``.
    """
    target = folder / f"{media_name}.json"
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a caller that did not make its strings printable: escape what is left
        text = json.dumps(data, indent=2, ensure_ascii=True, default=str) + "\n"
    fd, temp_name = tempfile.mkstemp(prefix=".sidecar-", suffix=".tmp", dir=folder)
    try:
        # Strict UTF-8: the sidecar is JSON for other programs, so a name's stray bytes were escaped before.
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
        move_no_overwrite(Path(temp_name), target)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    fsync_folder(folder)
    return target


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some filesystems refuse to open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_account_folders(root: Path, account: str) -> Path:
    """Create the account's four folders when missing (never ``root`` itself); return the account folder."""
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, "root folder missing (is the share mounted?)", str(root))
    base = root / account
    base.mkdir(exist_ok=True)
    for folder in FOLDERS:
        (base / folder).mkdir(exist_ok=True)
    return base
