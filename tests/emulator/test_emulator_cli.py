"""``python -m watchfolder.emulator`` (what ``watchfolder emulator`` runs) as a real process: startup,
printed credentials, clean stop on signals, bad usage, and memory that stays flat during a big upload."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from emulator_support import PATHS

from tests.emulator_fixture import fake_video
from watchfolder.emulator.cli import main


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "watchfolder.emulator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_banner(process: subprocess.Popen[str], last_prefix: str) -> dict[str, str]:
    """Read the printed lines up to the first starting with ``last_prefix``; return them by key."""
    assert process.stdout is not None
    lines: dict[str, str] = {}
    while True:
        line = process.stdout.readline()
        assert line, f"the emulator exited early: {process.stderr.read() if process.stderr else ''}"
        key, _, value = line.rstrip("\n").partition(": ")
        lines[key if key != "user" else f"user {value.split()[0]}"] = value
        if line.startswith(last_prefix):
            return lines


@pytest.fixture
def daemon() -> Iterator[subprocess.Popen[str]]:
    process = spawn("--listen", "127.0.0.1:0", "--user", "alice", "--private-user", "bob")
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=5)


def test_it_starts_fast_prints_credentials_and_stops_cleanly_on_sigterm(daemon: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    banner = read_banner(daemon, "user: bob")
    assert time.monotonic() - started < 5  # "well under a second" on an idle machine; CI may be busy
    base_url = banner["base_url"]
    assert base_url.startswith("http://127.0.0.1:") and banner["client_key"]
    alice = dict(part.split("=", 1) for part in banner["user alice"].split()[1:])
    answer = requests.post(f"{base_url}{PATHS['creator_info']}", timeout=5,
                           headers={"Authorization": f"Bearer {alice['access_token']}"})
    assert answer.status_code == 200 and answer.json()["data"]["creator_username"] == "alice"
    bob = dict(part.split("=", 1) for part in banner["user bob"].split()[1:])
    private = requests.post(f"{base_url}{PATHS['creator_info']}", timeout=5,
                            headers={"Authorization": f"Bearer {bob['access_token']}"}).json()["data"]
    assert "FOLLOWER_OF_CREATOR" in private["privacy_level_options"]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=5) == 0
    assert daemon.stderr is not None and daemon.stderr.read() == ""  # nothing logged per request


def test_sigint_stops_it_too(daemon: subprocess.Popen[str]) -> None:
    read_banner(daemon, "user: bob")
    daemon.send_signal(signal.SIGINT)
    assert daemon.wait(timeout=5) == 0


def test_bad_config_and_bad_listen_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "emu.yaml"
    path.write_text("rate_limit: 5\n")
    process = subprocess.run([sys.executable, "-m", "watchfolder.emulator", "--config", str(path)],
                             capture_output=True, text=True, timeout=30)
    assert process.returncode == 2 and "rate_limit" in process.stderr and str(path) in process.stderr
    assert main(["--listen", "nowhere"]) == 2
    assert main(["--bogus"]) == 2


def test_a_busy_port_exits_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = subprocess.run([sys.executable, "-m", "watchfolder.emulator", "--listen", f"127.0.0.1:{port}"],
                                 capture_output=True, text=True, timeout=30)
    assert process.returncode == 1 and "cannot listen" in process.stderr


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from Linux /proc")
def test_a_large_upload_does_not_grow_the_emulators_memory(tmp_path: Path) -> None:
    """256 MB in four 64,000,000-byte chunks: the emulator's peak memory grows far less than one chunk."""
    config = tmp_path / "emu.yaml"
    config.write_text("processing_seconds: 0\n")
    process = spawn("--listen", "127.0.0.1:0", "--config", str(config), "--user", "alice")
    try:
        banner = read_banner(process, "user: alice")
        token = dict(part.split("=", 1) for part in banner["user alice"].split()[1:])["access_token"]
        base_url = banner["base_url"]
        chunk, count = 64_000_000, 4
        size = chunk * count
        init = requests.post(f"{base_url}{PATHS['inbox_init']}", timeout=10, headers={
            "Authorization": f"Bearer {token}"}, json={"source_info": {
                "source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}})
        upload_url = init.json()["data"]["upload_url"]
        baseline = peak_rss_kib(process.pid)
        body = bytearray(os.urandom(1024) * (chunk // 1024))
        body[:200] = fake_video(200)
        with requests.Session() as session:
            for index in range(count):
                first = index * chunk
                answer = session.put(upload_url, data=bytes(body), timeout=60, headers={
                    "Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{first + chunk - 1}/{size}"})
                assert answer.status_code == (201 if index == count - 1 else 206)
        growth_mib = (peak_rss_kib(process.pid) - baseline) / 1024
        assert growth_mib < 24, f"the emulator grew by {growth_mib:.0f} MiB during a 256 MB upload"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
