"""Dedupe before the init, on the cheap key (``contenthash.quick_key``), with the full hash read only
when the key matches another item.

A file sent in chunks (a FILE_UPLOAD video) gets its full SHA-256 while it is sent; everything else
(photos, a folder of photos, a video TikTok pulls) is read whole before its init, as the key is made.
When the key matches, this item's file is read whole (the rare case) and compared with the other's
sha256; an other whose sha256 is not known yet (its hash is being built while it is sent) has its own
file read through an identity-checked open. If that file cannot be read right now (it is being moved,
or it changed), nothing is decided: this item waits a few seconds (``checking_duplicate``) and looks
again, so neither a double post nor a false "duplicate" can come of it. docs/reliability.md says when
each read happens.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from watchfolder.core.errors import MediaError
from watchfolder.core.model import Item
from watchfolder.daemon import contenthash
from watchfolder.daemon.itemfile import ItemFile, identity
from watchfolder.daemon.pacing import Parked, Stopped
from watchfolder.logs import Logger
from watchfolder.openfile import OpenMedia, what_is
from watchfolder.store.store import Store

HOLD_SECONDS = 5.0   # an item whose possible original cannot be read right now looks again after this


def full_sha256(file: ItemFile, item: Item, path: Path, log: Logger, why: str) -> str:
    """Read the item's whole content once for its sha256 (NotTheFile, PermissionError, Stopped pass)."""
    digest = file.sha256(item, path)
    log.info("content_hashed", read="full", why=why, bytes=item.size)
    return digest


def keyed(store: Store, file: ItemFile, item: Item, path: Path, *, whole: bool, now: float, log: Logger) -> Item:
    """Record the item's dedupe key, and with ``whole`` (it is not sent in chunks) its full sha256 too."""
    if what_is(path) == "folder":
        digest = item.sha256 or full_sha256(file, item, path, log, "photo_folder")
        return store.update(item.id, now=now, quick_key=contenthash.folder_key(digest), sha256=digest)
    key = contenthash.quick_key(file.open(item, path))
    fields: dict[str, Any] = {"quick_key": key}
    if whole and item.sha256 is None:
        fields["sha256"] = full_sha256(file, item, path, log, "not_sent_in_chunks")
    return store.update(item.id, now=now, **fields)


def original_of(store: Store, file: ItemFile, item: Item, path: Path, *, root: Path, stop: threading.Event,
                now: float, log: Logger) -> tuple[Item | None, Item]:
    """The item this one duplicates (``Store.same_key`` says which count, in which order), or None; and
    the item, its sha256 recorded when it had to be read. Raise Parked when a possible original cannot
    be read right now."""
    candidates = store.same_key(item)
    if not candidates:
        return None, item
    if item.sha256 is None:
        item = store.update(item.id, now=now, sha256=full_sha256(file, item, path, log, "key_matched"))
    unknown: Item | None = None
    for other in candidates:
        theirs = other.sha256 or _read_sha256(root, other, stop, log)
        if theirs is None:
            unknown = unknown or other
        elif theirs == item.sha256:
            return other, item
    if unknown is not None:
        raise Parked(now + HOLD_SECONDS, "checking_duplicate",
                     f"may be the same content as item {unknown.id}, which cannot be read right now; "
                     "looked at again shortly")
    return None, item


def _read_sha256(root: Path, other: Item, stop: threading.Event, log: Logger) -> str | None:
    """The sha256 of another item's file, read through an open that proves it is the one recorded; None
    when it cannot be read now (moved, changed, gone, a photo folder)."""
    path = root / other.account / other.folder / (other.result_name if other.moved and other.result_name
                                                   else other.name)
    digest = hashlib.sha256()
    try:
        with OpenMedia.open(path, identity(other)) as media:
            for block in media.blocks(contenthash.BLOCK):
                if stop.is_set():
                    raise Stopped
                digest.update(block)
            if not identity(other).matches(media.stat()):
                return None
    except (MediaError, OSError):
        return None
    log.info("content_hashed", read="full", why="other_key_matched", other=other.id, bytes=other.size)
    return digest.hexdigest()


def fill_sha256(store: Store, file: ItemFile, item: Item, path: Path, *, now: float, log: Logger, why: str) -> Item:
    """Record the item's sha256 if it is still unknown (a video whose chunks were not all sent by this
    trip, one TikTok pulled through the quirk, one finished before its upload), read whole from its file;
    left unknown when the file cannot be read any more."""
    if item.sha256 is not None or what_is(path) != "file":   # a photo folder was read whole before its init
        return item
    try:
        return store.update(item.id, now=now, sha256=full_sha256(file, item, path, log, why))
    except (MediaError, OSError, Stopped):
        return item
