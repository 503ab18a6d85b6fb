"""A damaged state database stops `watchfolder run` with the fix; a full one shows its real error.

A damaged page used to give a few worker crashes a second, forever; `Store.transaction` hid "database
or disk is full" behind "cannot rollback - no transaction is active".
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import Rig
from watchfolder.media import samples
from watchfolder.store.store import DB_NAME, Store

SCRIPT = Path(sys.executable).parent / "watchfolder"


def damage(database: Path) -> None:
    """Overwrite every page after the first (the header) with bytes SQLite cannot read as a b-tree."""
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    size = database.stat().st_size
    with open(database, "r+b") as handle:
        for offset in range(page_size, size, page_size):
            handle.seek(offset)
            handle.write(bytes([0x0D, 0xFF, 0xFF, 0xFF, 0xFF]) + b"\xa5" * (page_size - 5))


def run_daemon(rig: Rig, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **rig.env}
    return subprocess.run([str(SCRIPT), "run", "-c", str(rig.config_path)], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_a_damaged_database_stops_the_daemon_with_exit_2_and_the_fix(make_rig, tmp_path):
    rig = make_rig()
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    rig.wait_sidecar("alice", "clip.mp4")
    rig.stop()
    database = rig.state_dir / DB_NAME
    damage(database)

    result = run_daemon(rig)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"the state database {database} is damaged" in result.stderr
    assert "restore it from a backup" in result.stderr and f"mv {database} {database}.damaged" in result.stderr
    assert "daemon_ready" not in result.stderr   # it stopped before any upload could start


def test_a_file_that_is_not_a_database_is_damage_too(make_rig):
    rig = make_rig()
    rig.state_dir.mkdir(parents=True, exist_ok=True)
    (rig.state_dir / DB_NAME).write_bytes(b"this is not SQLite" * 300)

    result = run_daemon(rig)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "is damaged (file is not a database)" in result.stderr


def test_a_full_database_raises_its_own_error_not_a_failed_rollback(tmp_path):
    store = Store(tmp_path)
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # the disk is full from SQLite's point of view
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"), store.transaction() as conn:
        for number in range(200):
            conn.execute("INSERT INTO runtime VALUES (?, ?, 0)", (f"k{number}", "x" * 4000))
    assert not store.conn.in_transaction
    store.conn.execute(f"PRAGMA max_page_count = {pages + 1000}")
    store.set_runtime("after", {"ok": True}, 1.0)   # the connection is still usable once there is room
    assert store.runtime("after") == ({"ok": True}, 1.0)


def test_an_error_inside_a_transaction_still_rolls_it_back(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="mine"), store.transaction() as conn:
        conn.execute("INSERT INTO runtime VALUES ('half', '1', 0)")
        raise ValueError("mine")
    assert store.runtime("half") is None and not store.conn.in_transaction


def test_status_on_a_damaged_database_says_so_without_a_traceback(make_rig, tmp_path):
    rig = make_rig()
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    rig.wait_sidecar("alice", "clip.mp4")
    rig.stop()
    damage(rig.state_dir / DB_NAME)

    result = subprocess.run([str(SCRIPT), "status", "-c", str(rig.config_path)], capture_output=True, text=True,
                            timeout=60, check=False, env={**os.environ, **rig.env})

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"the state database {rig.state_dir / DB_NAME} cannot be read" in result.stderr
    assert "restore it from a backup" in result.stderr
