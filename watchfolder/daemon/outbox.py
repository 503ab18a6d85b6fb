"""Moving items between an account's folders and writing sidecars; nothing here ever overwrites a file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
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
    and filesystems without hard links fall back to a checked rename. Across filesystems (EXDEV: an
    account whose folders sit on two mounts) the move is a copy: to a hidden temp name beside
    ``dst``, fsynced, linked to ``dst`` (which fails if it exists), and only then is ``src`` removed.
    A crash in between leaves two copies (``same_copy`` tells them apart), never none.
    """
    if src.is_dir() and not src.is_symlink():
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", str(dst))
        try:
            os.rename(src, dst)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_folder(src, dst)
            shutil.rmtree(src)
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
        try:
            os.rename(src, dst)
        except OSError as again:
            if again.errno != errno.EXDEV:
                raise
            _copy_file(src, dst)
            os.unlink(src)
        return
    os.unlink(src)


def same_copy(one: Path, other: Path) -> bool:
    """True when ``one`` and ``other`` are the same file, or regular files on two filesystems with the
    same size and mtime (what a cross-device move leaves when a crash came before its source was removed)."""
    try:
        first, second = os.lstat(one), os.lstat(other)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if os.path.samestat(first, second):
        return True
    regular = stat.S_ISREG(first.st_mode) and stat.S_ISREG(second.st_mode)
    return regular and first.st_dev != second.st_dev and (first.st_size, first.st_mtime_ns) == (
        second.st_size, second.st_mtime_ns)


def _temp_beside(dst: Path) -> Path:
    return dst.with_name(f".watchfolder-move-{secrets.token_hex(8)}.tmp")


def _copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` (a regular file, or a link kept as a link: never followed) to ``dst`` through a
    fsynced temp name; raise FileExistsError if ``dst`` exists. Mode and mtime are kept."""
    temp = _temp_beside(dst)
    try:
        if os.path.islink(src):
            os.symlink(os.readlink(src), temp)
        else:
            _copy_bytes(src, temp)
        try:
            os.link(temp, dst, follow_symlinks=False)  # exclusive: fails when dst exists
        except FileExistsError:
            raise
        except OSError:
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, "target exists", str(dst)) from None
            os.rename(temp, dst)  # a filesystem without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    fsync_folder(dst.parent)


def _copy_bytes(src: Path | str, temp: Path | str) -> None:
    source = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(source, "rb") as reader, open(temp, "xb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        info = os.fstat(reader.fileno())
        os.fchmod(writer.fileno(), stat.S_IMODE(info.st_mode))
        os.utime(writer.fileno(), ns=(info.st_atime_ns, info.st_mtime_ns))
        os.fsync(writer.fileno())


def _copy_folder(src: Path, dst: Path) -> None:
    """Copy a photo folder to ``dst`` through a temp folder beside it (links stay links), every file
    fsynced; raise FileExistsError if ``dst`` exists by the time the copy is complete."""
    temp = _temp_beside(dst)
    try:
        shutil.copytree(src, temp, symlinks=True, copy_function=_copy_bytes)
        for folder, _, names in os.walk(temp):
            for name in names:
                if not os.path.islink(os.path.join(folder, name)):
                    with open(os.path.join(folder, name), "rb") as handle:
                        os.fsync(handle.fileno())
            fsync_folder(Path(folder))
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", str(dst))
        os.rename(temp, dst)
    finally:
        if os.path.lexists(temp):
            shutil.rmtree(temp)
    fsync_folder(dst.parent)


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
