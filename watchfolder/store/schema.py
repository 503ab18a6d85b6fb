"""The state database's schema: its file name, the ordered migrations and how a connection is set up
(WAL journal, FULL sync, a busy timeout)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

DB_NAME = "watchfolder.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE items (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        folder TEXT NOT NULL DEFAULT 'inbox',
        state TEXT NOT NULL,
        settings_name TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        ctime_ns INTEGER NOT NULL DEFAULT 0,
        ino INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT,
        content_type TEXT,
        detected_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        next_attempt_at REAL,
        wait_reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        publish_id TEXT,
        upload_url TEXT,
        upload_expires_at REAL,
        uploaded_bytes INTEGER NOT NULL DEFAULT 0,
        chunk_size INTEGER,
        chunk_count INTEGER,
        init_started_at REAL,
        init_count INTEGER NOT NULL DEFAULT 0,
        orphans TEXT NOT NULL DEFAULT '[]',
        status TEXT,
        post_ids TEXT NOT NULL DEFAULT '[]',
        error_code TEXT,
        error_message TEXT,
        error_log_id TEXT,
        moved INTEGER NOT NULL DEFAULT 0,
        result_name TEXT,
        staged TEXT NOT NULL DEFAULT '[]',
        publish_at REAL,
        detail TEXT,
        duplicate_of INTEGER,
        source_mode TEXT,
        post_info TEXT,
        budget_reset_at REAL
    );
    CREATE INDEX items_account_state ON items(account, state);
    CREATE INDEX items_account_sha ON items(account, sha256);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id INTEGER NOT NULL REFERENCES items(id),
        state TEXT NOT NULL,
        at REAL NOT NULL,
        detail TEXT
    );
    CREATE INDEX events_item ON events(item_id);
    CREATE TABLE ledger (
        account TEXT NOT NULL,
        what TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX ledger_lookup ON ledger(account, what, at);
    CREATE TABLE accounts (
        account TEXT PRIMARY KEY,
        wait_until REAL,
        wait_reason TEXT,
        wait_code TEXT,
        probe_seconds REAL,
        paused_code TEXT,
        paused_message TEXT,
        paused_tokens_at REAL
    );
    CREATE TABLE runtime (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        at REAL NOT NULL
    );
    """,
    # 2: what the media probe read (the sidecar's "media") and warnings that do not stop an item
    """
    ALTER TABLE items ADD COLUMN media TEXT;
    ALTER TABLE items ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'
    """,
    # 3: budget_reset_at was never written or read; the ledger is pruned by age on every write
    """
    ALTER TABLE items DROP COLUMN budget_reset_at;
    CREATE INDEX ledger_age ON ledger(at);
    """,
    # 4: the transient failures in a row since the item last made progress (the backoff's step; the
    # budget, ``attempts``, counts them all)
    """
    ALTER TABLE items ADD COLUMN retry_streak INTEGER NOT NULL DEFAULT 0
    """,
    # 5: intake asks for the open item of an (account, name) for every entry it looks at
    """
    CREATE INDEX items_account_name ON items(account, name)
    """,
    # 6: the file's device beside its inode (NULL for items recorded before: compared by the rest only)
    """
    ALTER TABLE items ADD COLUMN dev INTEGER
    """,
    # 7: the cheap dedupe key (size + SHA-256 of the first and last MiB), matched before the full hash
    """
    ALTER TABLE items ADD COLUMN quick_key TEXT;
    CREATE INDEX items_account_key ON items(account, quick_key)
    """,
    # 8: the main loop's next wake-up is the earliest next try of an open item: only those rows, in order
    # (a backlog of 10,000 queued items without one was a scan on every pass)
    """
    CREATE INDEX items_open_due ON items(next_attempt_at)
        WHERE next_attempt_at IS NOT NULL AND state IN ('queued', 'waiting', 'uploading', 'processing')
    """,
)

def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Given the database path, return a configured connection (WAL, NORMAL sync, 10 s busy timeout)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0, isolation_level=None,
                               check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a commit survives a crash of the process at once, and a power cut once the WAL is
        # synced (at a checkpoint, or at the next durable commit). The commits a power cut must not undo
        # (an init's intent and answer, an outcome before its move, chunk progress) are made durable one
        # by one (``Store.transaction(durable=True)``: FULL for that commit); docs/reliability.md lists them.
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn

def migrate(conn: sqlite3.Connection) -> int:
    """Inside the caller's transaction, apply the migrations not applied yet, in order; return the version."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    done = {row[0] for row in conn.execute("SELECT version FROM migrations")}
    for version, script in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, datetime('now'))", (version,))
    return len(MIGRATIONS)
