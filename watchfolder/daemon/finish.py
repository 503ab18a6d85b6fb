"""Finishing an item: once its outcome is committed, move it to done/ or failed/ with its sidecar.

The order makes a crash harmless: outcome committed → target name committed → file moved →
sidecar written → ``moved`` committed. Running ``finish`` again after a crash at any point
completes the job without losing or duplicating anything.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

from watchfolder.core.model import Item, State
from watchfolder.core.text import bounded, display_name, iso, printable
from watchfolder.core.transitions import Event
from watchfolder.daemon import outbox
from watchfolder.logs import Logger
from watchfolder.store.store import Store

SCHEMA = 1
SIDECAR_MAX_BYTES = 60 * 1024   # a sidecar stays under 64 KiB whatever a settings file or a retry storm held
MESSAGE_MAX = 4000              # characters of an error message in a sidecar
DETAIL_MAX = 500                # characters of one history entry's detail
HISTORY_HEAD, HISTORY_TAIL = 10, 40  # a long history keeps its first and last events
# ENOENT and ESTALE: the share holding the account's folders is away (unmounted, NFS handle gone).
DISK_ERRORS = (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EPERM, errno.EDQUOT, errno.EIO, errno.ENOENT,
               errno.ESTALE)


def sidecar(item: Item, history: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """The JSON document of interface.md for a finished item (no token or secret can reach it)."""
    error = None
    if item.state is State.FAILED:
        error = {"code": item.error_code or "failed", "message": item.error_message or "",
                 "log_id": item.error_log_id or ""}
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "result": "done" if item.state is State.DONE else "failed",
        "account": item.account,
        "name": display_name(item.name),
        "kind": item.kind,
        "mode": item.source_mode,
        "publish_id": item.publish_id,
        "status": item.status,
        "post_ids": json.loads(item.post_ids or "[]"),
        "error": error,
        "size": item.size,
        "sha256": item.sha256,
        "attempts": max(1, item.init_count),
        "detected_at": iso(item.detected_at),
        "finished_at": iso(now),
        "history": [_event(event) for event in history],
    }
    if item.settings_name:
        data["settings_file"] = display_name(item.settings_name)
    if item.post_info:
        data["post_settings"] = json.loads(item.post_info)
    if item.media:
        data["media"] = json.loads(item.media)
    warnings = json.loads(item.warnings or "[]")
    if warnings:
        data["warnings"] = warnings
    orphans = json.loads(item.orphans or "[]")
    if orphans:
        data["orphans"] = orphans
    if item.duplicate_of is not None:
        data["duplicate_of"] = item.duplicate_of
    return fit(data)


def fit(data: dict[str, Any]) -> dict[str, Any]:
    """Given a sidecar document, return it bounded and printable: every string valid UTF-8 (bytes of a
    name that were not UTF-8 shown as ``\\xNN``), the error message and history details cut to a
    length, a long history shortened to its first and last events, the whole under SIDECAR_MAX_BYTES."""
    data = _printable(data)
    if data.get("error"):
        data["error"]["message"] = bounded(data["error"]["message"], MESSAGE_MAX)
    history = [dict(event, detail=bounded(event["detail"], DETAIL_MAX)) if event.get("detail") else event
               for event in data.get("history", [])]
    if len(history) > HISTORY_HEAD + HISTORY_TAIL:
        left_out = len(history) - HISTORY_HEAD - HISTORY_TAIL
        history = [*history[:HISTORY_HEAD], {"state": "…", "at": history[HISTORY_HEAD]["at"],
                                             "detail": f"{left_out} events left out"}, *history[-HISTORY_TAIL:]]
    data["history"] = history
    if len(json.dumps(data, ensure_ascii=False).encode()) > SIDECAR_MAX_BYTES:
        # Only a pathological record gets here: every string is cut short.
        data = _cut(data, 400)
        data["history"] = data["history"][:3] + data["history"][-3:]
    return data


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return bounded(value, limit)
    if isinstance(value, dict):
        return {k: _cut(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, limit) for v in value[:50]]
    return value


def _event(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"state": event["state"], "at": iso(event["at"])}
    if event.get("detail"):
        out["detail"] = event["detail"]
    return out


def finish(root: Path, store: Store, item: Item | int, now: float, log: Logger) -> bool:
    """Move a DONE/FAILED item to its folder and write the sidecar; return True when it is all there.

    On a disk error (full, read-only, permission) nothing is deleted: the item keeps its place, the
    error is recorded for `status`, and the main loop calls this again later. Safe to call from several
    threads and again after a crash at any point: the item is read afresh under one lock. Given only its
    id (the main loop), an item already moved or not finished is answered without the lock.
    """
    if isinstance(item, int):
        item = store.get(item)
        if item.moved or item.state not in (State.DONE, State.FAILED):
            # All there already (moved is final), or not finished: no need to queue for the lock behind a
            # worker that is writing its own item's sidecar.
            return True
    with _LOCK:
        return _finish(root, store, store.get(item.id), now, log)


# A worker finishing its item and the main loop's pass over unmoved items may meet on the same item.
_LOCK = threading.Lock()


def _finish(root: Path, store: Store, item: Item, now: float, log: Logger) -> bool:
    if item.moved or item.state not in (State.DONE, State.FAILED):
        return True
    base = root / item.account
    target_folder = "done" if item.state is State.DONE else "failed"
    destination = base / target_folder
    try:
        result_name = _move(base, destination, store, item, now)
        if result_name is None:
            return True
        if not (destination / f"{result_name}.json").exists():
            moved = dataclasses.replace(item, result_name=result_name)
            outbox.write_sidecar(destination, result_name, sidecar(moved, store.history(item.id), now))
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        reason = f"cannot move to {target_folder}/: {os.strerror(exc.errno or 0).lower()}; will retry"
        if item.detail != reason:
            store.update(item.id, now=now, detail=reason)
            log.error("move_failed", account=item.account, item=display_name(item.name), reason=reason)
        return False
    store.apply(item, Event.MOVED, now=now, moved=1, folder=target_folder, detail=None)
    log.info("item_finished", account=item.account, item=display_name(item.name), item_id=item.id,
             result=target_folder, publish_id=item.publish_id, stored_as=display_name(result_name))
    return True


def _move(base: Path, destination: Path, store: Store, item: Item, now: float) -> str | None:
    """Move the media (and settings file); return the name it has in ``destination``."""
    if item.result_name and os.path.lexists(destination / item.result_name):
        source = _locate(base, item)
        if source is not None and _same_file(source / item.name, destination / item.result_name):
            os.unlink(source / item.name)   # a move cut between its link and its unlink: finish it
            source = None
        if source is None:
            # Moved before a crash; its settings file and the sidecar may still be missing.
            _bring_settings(base, destination, item)
            return item.result_name
    source = _locate(base, item)
    if source is None and not (base / "processing").is_dir():
        # Not "the user took it out": the account's folders are away with their share. Retry later.
        raise FileNotFoundError(errno.ENOENT, "the account's folders are unavailable", str(base))
    if source is None:
        # The file is gone (the user took it out of processing/); the record still gets a sidecar.
        store.apply(item, Event.FILE_MISSING, now=now, moved=1, detail="the file was no longer there to move")
        return None
    planned = plan(destination, item)
    if planned != item.result_name:   # usually committed with the outcome already (see ``plan``)
        item = store.update(item.id, now=now, result_name=planned)
    new_name, _ = outbox.move_item(source, destination, item.name, item.settings_name, room=outbox.SIDECAR_ROOM)
    # The unlink reaches the disk before `moved` is committed (the sidecar's own fsync covers the
    # destination), so a power cut cannot leave the file in both folders.
    outbox.fsync_folder(source)
    if new_name != planned:
        store.update(item.id, now=now, result_name=new_name)
    return new_name


def plan(destination: Path, item: Item) -> str:
    """The name the item's file gets in ``destination`` (done/ or failed/): its own, or the first
    ``name (n).ext`` free there for it, its settings file and its sidecar. The pipeline commits it with the
    outcome, so the move that follows needs no commit of its own unless the folder changed meanwhile."""
    names = [item.name] + ([item.settings_name] if item.settings_name else [])
    # Room for "<name>.json": a name near the 255-byte limit is shortened rather than left without a sidecar.
    number = outbox.free_number(destination, names, room=outbox.SIDECAR_ROOM)
    return outbox.suffixed(item.name, number, outbox.SIDECAR_ROOM)


def _same_file(one: Path, other: Path) -> bool:
    return outbox.same_copy(one, other)


def _bring_settings(base: Path, destination: Path, item: Item) -> None:
    """The media reached ``destination`` before a crash: move its settings file there too, under the
    name with the media's suffix (``clip (2).mp4`` → ``clip (2).yaml``)."""
    if not item.settings_name or not item.result_name or item.settings_name == item.name:
        return
    folders = ["processing", "inbox"] if item.folder == "inbox" else ["processing"]
    source = next((base / f / item.settings_name for f in folders if os.path.lexists(base / f / item.settings_name)),
                  None)
    number = next((n for n in range(1, 10_000)
                   if outbox.suffixed(item.name, n, outbox.SIDECAR_ROOM) == item.result_name), None)
    if source is None or number is None:
        return
    target = destination / outbox.suffixed(item.settings_name, number, outbox.SIDECAR_ROOM)
    if _same_file(source, target):
        os.unlink(source)
    elif not os.path.lexists(target):
        outbox.move_no_overwrite(source, target)


def _locate(base: Path, item: Item) -> Path | None:
    """The folder that holds the item's file now (its recorded folder first, then inbox and processing)."""
    for folder in dict.fromkeys([item.folder, "processing", "inbox"]):
        if folder in ("inbox", "processing") and os.path.lexists(base / folder / item.name):
            return base / folder
    return None
