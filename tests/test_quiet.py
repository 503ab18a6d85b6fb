"""Quiet when idle: with its work done, the real daemon writes nothing to disk (a NAS disk may spin down),
while /healthz keeps answering from memory."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.harness import Rig, wait_for
from tests.test_cli_run import SCRIPT, cli_env
from watchfolder.media import samples

IDLE_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.stat().st_size)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text(encoding="ascii").splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/io has no write_bytes")


def test_an_idle_daemon_writes_nothing_for_a_minute_and_stays_healthy(emulator, tmp_path):
    port = _free_port()
    rig = Rig(tmp_path / "rig", emulator, overrides={"metrics.listen": f"127.0.0.1:{port}"})
    process = subprocess.Popen([str(SCRIPT), "run", "-c", str(rig.config_path)], env=cli_env(rig),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: rig.folder("alice", "inbox").exists(), 15, what="inbox created by the daemon")
        samples.write_mp4(tmp_path / "clip.mp4", size=300_000)
        (tmp_path / "clip.mp4").rename(rig.folder("alice", "inbox") / "clip.mp4")
        wait_for(lambda: (rig.folder("alice", "done") / "clip.mp4.json").exists(), 30, what="done sidecar")
        time.sleep(5)   # the last commits of the trip, and one idle look, are over
        healthz = f"http://127.0.0.1:{port}/healthz"
        assert requests.get(healthz, timeout=5).status_code == 200
        files, written = _files(rig.state_dir), _write_bytes(process.pid)
        time.sleep(IDLE_SECONDS / 2)
        assert requests.get(healthz, timeout=5).json()["ok"] is True   # answered from memory
        time.sleep(IDLE_SECONDS / 2)
        assert process.poll() is None, "the daemon stopped"
        assert _write_bytes(process.pid) == written, "the idle daemon wrote to disk"
        assert _files(rig.state_dir) == files, "a file under state_dir changed while the daemon was idle"
        assert requests.get(healthz, timeout=5).status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    assert process.returncode == 0
    assert os.listdir(rig.folder("alice", "failed")) == []
