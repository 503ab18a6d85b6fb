"""The installed console script, as a user runs it: a whole upload, then SIGTERM, exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import Rig, wait_for
from watchfolder.media import samples

SCRIPT = Path(sys.executable).parent / "watchfolder"


def run_cli(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


def cli_env(rig: Rig) -> dict[str, str]:
    return {**os.environ, **rig.env, "PYTHONUNBUFFERED": "1"}


def test_run_uploads_then_stops_cleanly_on_sigterm(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator)
    env = cli_env(rig)
    process = subprocess.Popen([str(SCRIPT), "run", "-c", str(rig.config_path)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rig.folder("alice", "inbox").exists(), 15, what="inbox created by the daemon")
        samples.write_mp4(tmp_path / "clip.mp4", size=700_000)
        (tmp_path / "clip.mp4").rename(rig.folder("alice", "inbox") / "clip.mp4")
        wait_for(lambda: (rig.folder("alice", "done") / "clip.mp4.json").exists(), 30, what="done sidecar")
        sidecar = json.loads((rig.folder("alice", "done") / "clip.mp4.json").read_text())
        assert sidecar["result"] == "done"
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        assert code == 0
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    names = [e.get("event") for e in events]
    assert "item_queued" in names and "item_finished" in names and "daemon_stopped" in names
    assert all(e.get("account") == "alice" for e in events if e.get("event") == "item_finished")


def test_status_and_check_from_the_console_script(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator)
    env = cli_env(rig)
    status = run_cli("status", "--json", "-c", str(rig.config_path), env=env)
    assert status.returncode == 0, status.stderr
    assert "message" in json.loads(status.stdout)
    bad = tmp_path / "bad.yaml"
    bad.write_text("root: /nowhere\nwatch:\n  settle_seconds: soon\n")
    result = run_cli("-c", str(bad), "check", env=env)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "settle_seconds" in result.stderr and "state_dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_daemon_on_the_same_state_exits_2(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator)
    env = cli_env(rig)
    first = subprocess.Popen([str(SCRIPT), "run", "-c", str(rig.config_path)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (rig.state_dir / "watchfolder.lock").exists()
                 and (rig.state_dir / "watchfolder.sqlite3").exists(), 15, what="first daemon up")
        time.sleep(0.3)
        second = run_cli("run", "-c", str(rig.config_path), env=env)
        assert second.returncode == 2
        assert "already running" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
        first.communicate(timeout=5)
