"""The daemon's store, opened only once SQLite's ``quick_check`` says it is sound.

A damaged page used to surface later as worker crashes, several a second, forever. Checked at open,
it stops ``watchfolder run`` with exit 2 and the two ways out instead: restore the file from a backup,
or move it aside and start fresh (the folders are the truth: what is in ``inbox/`` is taken in again).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from watchfolder.core.errors import DamagedStateError, StoreError
from watchfolder.store.store import DB_NAME, Store

MAX_VERDICT = 300   # characters of SQLite's verdict quoted in the message


def damaged_advice(path: Path, verdict: str) -> str:
    """Given the database path and what is wrong with it, return the sentence that says what to do."""
    if len(verdict) > MAX_VERDICT:
        verdict = verdict[:MAX_VERDICT] + "…"
    return (f"the state database {path} is damaged ({verdict}); nothing was started. Either restore it from a "
            f"backup, or move it aside to start fresh: mv {path} {path}.damaged (and its -wal and -shm files). "
            "The folders are the truth: files in inbox/ are taken in again; anything left in processing/ had "
            "begun its upload, so check the TikTok app before putting it back in inbox/")


def open_checked(state_dir: Path) -> Store:
    """Open (and migrate) the store of ``state_dir`` and run ``PRAGMA quick_check``; return the store.

    Raise DamagedStateError (the CLI's exit 2) with :func:`damaged_advice` when SQLite finds damage, at
    open or in the check; other StoreErrors (a busy database) pass through unchanged.
    """
    path = Path(state_dir) / DB_NAME
    try:
        store = Store(state_dir)
    except StoreError as exc:
        cause = exc.__cause__
        if isinstance(cause, sqlite3.DatabaseError) and not isinstance(cause, sqlite3.OperationalError):
            raise DamagedStateError(damaged_advice(path, str(cause))) from None
        raise
    verdict = store.quick_check()
    if verdict != "ok":
        store.close()
        raise DamagedStateError(damaged_advice(path, verdict))
    return store
