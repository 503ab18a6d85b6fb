"""systemd's notify protocol, read from a real datagram socket the test owns: READY=1 once the daemon is up,
STATUS= lines from the store, WATCHDOG=1 only while the main loop runs and is healthy, STOPPING=1 at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from watchfolder.daemon.loop import Daemon
from watchfolder.media import samples
from watchfolder.ops import sdnotify
from watchfolder.ops.health import HealthMonitor

SCRIPT = Path(sys.executable).parent / "watchfolder"


class Listener:
    """A datagram socket standing in for systemd: records every message with the time it arrived."""

    def __init__(self) -> None:
        # A short folder of its own: socket paths are limited to 107 bytes, and pytest's tmp_path can be longer.
        self.folder = tempfile.mkdtemp(prefix="wfsd")
        self.path = os.path.join(self.folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def with_key(self, key: str, since: float = 0.0) -> list[dict[str, str]]:
        with self.lock:
            return [fields for at, fields in self.messages if key in fields and at >= since]

    def statuses(self) -> list[str]:
        return [fields["STATUS"] for fields in self.with_key("STATUS")]

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    yield listening
    listening.close()


class Staller:
    """A hook that blocks the main loop while ``stall`` is set: a hung loop, on demand."""

    def __init__(self) -> None:
        self.stall = threading.Event()
        self.stalled = threading.Event()

    def on_ready(self, daemon: Any) -> None:
        return None

    def on_tick(self, daemon: Any, now: float) -> None:
        while self.stall.is_set() and not daemon.stop.is_set():
            self.stalled.set()
            time.sleep(0.02)
        self.stalled.clear()

    def on_stop(self, daemon: Any) -> None:
        return None


def start(rig: Rig, hooks: list[Any]) -> Daemon:
    """The daemon in a thread with these hooks, returned at once (rig.stop() still stops it)."""
    return rig.start(hooks, wait=False)


def notifier(listener: Listener, monitor: HealthMonitor, watchdog_usec: int = 100_000) -> sdnotify.SystemdNotifier:
    hook = sdnotify.from_env({"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": str(watchdog_usec)}, monitor)
    assert hook is not None
    hook.status_seconds = 0.1
    return hook


def test_ready_then_repeated_watchdog_pings_which_stop_while_the_loop_stalls(make_rig, listener):
    rig = make_rig()
    monitor, staller = HealthMonitor(), Staller()
    start(rig, [monitor, notifier(listener, monitor), staller])
    ready = wait_for(lambda: listener.with_key("READY"), 10, what="READY=1")
    assert ready[0]["READY"] == "1" and ready[0]["STATUS"] == "idle"
    assert (rig.state_dir / "watchfolder.sqlite3").exists() and rig.daemon.watcher.health()[0].alive

    begun = time.monotonic()
    # An idle loop passes once a second (LOOK_SECONDS), and its first pass may have pinged just before
    # READY was seen here: five more pings take up to five seconds and a bit.
    wait_for(lambda: len(listener.with_key("WATCHDOG", since=begun)) >= 5, 10, what="five watchdog pings")

    staller.stall.set()
    wait_for(staller.stalled.is_set, 5, what="the loop to stall")
    hung = time.monotonic()
    time.sleep(0.8)  # eight watchdog intervals of 0.1 s
    assert listener.with_key("WATCHDOG", since=hung + 0.05) == [], "no ping while the main loop hangs"

    staller.stall.clear()
    resumed = time.monotonic()
    wait_for(lambda: len(listener.with_key("WATCHDOG", since=resumed)) >= 3, 5, what="pings after the stall")

    rig.stop()
    assert listener.with_key("STOPPING"), "STOPPING=1 when the daemon stops"


def test_pings_stop_and_status_says_why_while_an_inbox_observer_is_dead(make_rig, listener):
    rig = make_rig()
    monitor = HealthMonitor()
    daemon = start(rig, [monitor, notifier(listener, monitor)])
    wait_for(lambda: listener.with_key("WATCHDOG"), 10, what="a first ping")
    watcher = daemon.watcher
    healthy_factory = watcher._factory

    def broken(method: str, poll_interval: float) -> Any:
        raise OSError("no observer for this test")

    watcher._factory = broken  # the restart after the death fails too, so the inbox stays unwatched
    watcher._observers["alice"].stop()
    unhealthy = wait_for(lambda: [s for s in listener.statuses() if s.startswith("unhealthy")], 10,
                         what="an unhealthy STATUS")
    assert "inbox of alice is not watched" in unhealthy[0]
    quiet = time.monotonic()
    time.sleep(0.6)
    assert listener.with_key("WATCHDOG", since=quiet) == [], "no ping while an observer is dead"

    watcher._factory = healthy_factory
    back = time.monotonic()
    wait_for(lambda: listener.with_key("WATCHDOG", since=back), 15, what="pings once the observer is back")


def test_status_lines_come_from_the_store_queued_waiting_and_account_waits(make_rig, listener, tmp_path):
    rig = make_rig()
    rig.emulator.faults.fail_next("inbox_init", error_code="spam_risk_too_many_pending_share")
    monitor = HealthMonitor()
    start(rig, [monitor, notifier(listener, monitor)])
    wait_for(lambda: listener.with_key("READY"), 10, what="READY=1")
    for name in ("one.mp4", "two.mp4"):
        samples.write_mp4(tmp_path / name, size=200_000)
        rig.drop("alice", name, tmp_path / name)
    line = wait_for(lambda: [s for s in listener.statuses() if "alice waiting until" in s], 15,
                    what="a STATUS naming the account's wait")[-1]
    assert "1 queued" in line and "1 waiting" in line, line


def test_status_line_reads_like_a_sentence() -> None:
    now = time.time()
    data = {
        "accounts": [
            {"account": "alice", "queued": 3, "waiting": 0, "processing": 0, "wait_until": None, "paused": None},
            {"account": "bob", "queued": 0, "waiting": 0, "processing": 1, "paused": None,
             "wait_until": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600))},
            {"account": "carol", "queued": 0, "waiting": 2, "processing": 0, "wait_until": None,
             "paused": "sign_in"},
        ],
        "items": [{"state": "uploading", "percent": 42}, {"state": "queued", "percent": 0}],
    }
    until = time.strftime("%H:%M", time.localtime(now + 600))
    same_day = time.localtime(now + 600).tm_yday == time.localtime(now).tm_yday
    expected_until = until if same_day else time.strftime("%b %d %H:%M", time.localtime(now + 600))
    assert sdnotify.status_line(data, now) == (
        f"3 queued, 1 uploading 42%, 1 at TikTok, 2 waiting, bob waiting until {expected_until}, carol needs sign-in")
    assert sdnotify.status_line({"accounts": [], "items": []}, now) == "idle"


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_this_process() -> None:
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.socket_address({"NOTIFY_SOCKET": "@abstract/name"}) == b"\0abstract/name"
    assert sdnotify.socket_address({}) is None


def test_abstract_namespace_socket_receives_the_message() -> None:
    name = f"watchfolder-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(b"\0" + name.encode())
    receiver.settimeout(2)
    try:
        address = sdnotify.socket_address({"NOTIFY_SOCKET": "@" + name})
        assert address is not None
        sender = sdnotify.Notify(address)
        assert sender.send("READY=1", "STATUS=multi\nline")
        assert receiver.recv(100) == b"READY=1\nSTATUS=multi line"
        sender.close()
    finally:
        receiver.close()


def test_the_console_script_under_a_notify_socket_says_ready_and_stopping(emulator, tmp_path, listener):
    rig = Rig(tmp_path / "rig", emulator)
    env = {**os.environ, **rig.env, "NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"}
    process = subprocess.Popen([str(SCRIPT), "run", "-c", str(rig.config_path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_for(lambda: listener.with_key("READY"), 15, what="READY=1 from the console script")
        assert ready[0]["STATUS"] == "idle"
        wait_for(lambda: len(listener.with_key("WATCHDOG")) >= 2, 5, what="watchdog pings")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
    assert listener.with_key("STOPPING")
