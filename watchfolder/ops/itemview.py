"""One item for the status page's detail view: its status row (``report.item_row``), its history from the store
and, once it is finished, its sidecar as written beside it in ``done/`` or ``failed/``."""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Any

from watchfolder.config.settings import Settings
from watchfolder.core.errors import StoreError
from watchfolder.core.model import State
from watchfolder.core.text import iso, printable
from watchfolder.ops import report
from watchfolder.store.store import Store

SIDECAR_READ_MAX = 1024 * 1024  # a sidecar is kept far smaller than this; a bigger file is not ours


def read_sidecar(settings: Settings, account: str, folder: str, name: str) -> tuple[dict[str, Any] | None, str]:
    """The sidecar ``name``.json in the account's ``folder``, or None and why it cannot be shown. It is opened
    without following a link and must be a small regular file holding a JSON object."""
    path = settings.root / account / folder / f"{name}.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        why = "it is a link" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
        return None, f"{folder}/{name}.json cannot be read: {why}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > SIDECAR_READ_MAX:
            return None, f"{folder}/{name}.json is not a sidecar (not a small regular file)"
        with os.fdopen(fd, "rb", closefd=False) as file:
            raw = file.read(SIDECAR_READ_MAX + 1)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{folder}/{name}.json is not valid JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"{folder}/{name}.json is not a JSON object"
    return data, ""


def detail(settings: Settings, item_id: int, now: float) -> dict[str, Any] | None:
    """Given an item id, return {"item": its status row, "history": [{"at", "state", "detail"}], "sidecar": the
    sidecar or None, "sidecar_note": why there is none}; None when no such item (or no state yet)."""
    if not (settings.state_dir / "watchfolder.sqlite3").exists():
        return None
    store = Store(settings.state_dir, readonly=True)
    try:
        try:
            item = store.get(item_id)
        except StoreError:
            return None
        events = store.history(item_id)
    finally:
        store.close()
    if item.account not in {account.name for account in settings.accounts}:
        return None  # an account no longer in the config: its folders are not ours to read
    entered = next((e["at"] for e in reversed(events) if e["state"] == str(item.state)), None)
    row = report.item_row(item, now, settings.zone(), entered if item.state in (State.UPLOADING,
                                                                                  State.PROCESSING) else None)
    history = [{"at": iso(e["at"]), "state": e["state"], "detail": printable(e["detail"]) if e["detail"] else None}
               for e in events]
    sidecar, note = None, "the item is not finished: its sidecar is written when it reaches done/ or failed/"
    if item.state in (State.DONE, State.FAILED) and item.folder in ("done", "failed"):
        sidecar, note = read_sidecar(settings, item.account, item.folder, item.result_name or item.name)
    return {"item": row, "history": history, "sidecar": sidecar, "sidecar_note": note}
