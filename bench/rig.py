"""The pieces every benchmark runs: the emulator and the daemon, each as its own process on loopback.

The emulator is ``python -m watchfolder.emulator`` (or ``python -m bench.tlsemu`` behind TLS); the daemon
is ``watchfolder run -c CONFIG`` with its tokens stored by ``watchfolder auth import``, exactly as a user
runs it. The daemon writes JSON log lines to a file, which the benchmarks read for the times of its steps.
Over 300 lines because the two processes' start, readiness and clean stop belong together: every benchmark
relies on them in the same way.
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Rate limits and caps off, processing instant, content checks off (sparse files are fine): the
# benchmarks measure watchfolder, not TikTok's pacing.
EMULATOR_SETTINGS: dict[str, Any] = {
    "init_per_minute": 0, "status_per_minute": 0, "creator_info_per_minute": 0, "pending_share_cap": 0,
    "processing_seconds": 0, "check_content": False,
}
STOP_SECONDS = 60.0

# Every process a benchmark starts, so none outlives the benchmark, whatever way it ends.
_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_LIVE):
        if process.poll() is None:
            process.kill()
            process.wait()


def _started(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    _LIVE.add(process)
    return process


@dataclass
class Context:
    """What every benchmark gets: a scratch folder of its own, smoke mode (tiny sizes, seconds), and a
    way to say what it is doing."""

    work: Path
    smoke: bool
    say: Any


def watchfolder_command() -> list[str]:
    """The ``watchfolder`` console script beside this Python (a virtualenv's), else ``python -m watchfolder``."""
    script = Path(sys.executable).parent / "watchfolder"
    return [str(script)] if script.exists() else [sys.executable, "-m", "watchfolder"]


@dataclass(frozen=True)
class User:
    name: str
    open_id: str
    access_token: str
    refresh_token: str


class EmulatorProcess:
    """The emulator in a process of its own. ``start`` returns once it has printed its URL and users."""

    def __init__(self, folder: Path, users: Sequence[str], *, settings: Mapping[str, Any] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.folder = folder.resolve()
        self.user_names = list(users)
        self.settings = {**EMULATOR_SETTINGS, **(settings or {})}
        self.tls = tls
        self.config_path = self.folder / ("emulator-tls.yaml" if tls else "emulator.yaml")
        self.process: subprocess.Popen[bytes] | None = None
        self.scratch: Path | None = None
        self.base_url = ""
        self.client_key = ""
        self.client_secret = ""
        self.users: dict[str, User] = {}
        self.ssl_context: ssl.SSLContext | None = ssl.create_default_context(cafile=str(tls[0])) if tls else None
        users_args = [arg for name in self.user_names for arg in ("--user", name)]
        if tls:
            self.command = [sys.executable, "-m", "bench.tlsemu", "--cert", str(tls[0]), "--key", str(tls[1]),
                            "--config", str(self.config_path), *users_args]
        else:
            self.command = [sys.executable, "-m", "watchfolder.emulator", "--listen", "127.0.0.1:0", "--config",
                            str(self.config_path), *users_args]

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.settings), encoding="utf-8")
        # Received bytes wait in the emulator's temp folder until an upload completes. On tmpfs they cost
        # no disk writeback, which would otherwise disturb the next measurement.
        shm = "/dev/shm"  # a private folder made inside it by mkdtemp
        parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else str(self.folder)
        self.scratch = Path(tempfile.mkdtemp(prefix="bench-emulator-", dir=parent))
        env = {**os.environ, "TMPDIR": str(self.scratch)}
        stderr = open(self.folder / "emulator.log", "ab")  # noqa: SIM115 - kept open for the process's life
        self.process = _started(subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=stderr, env=env,
                                                 cwd=Path(__file__).resolve().parent.parent))
        stderr.close()
        for line in self._read_banner(timeout):
            key, _, value = line.strip().partition(": ")
            if key == "base_url":
                self.base_url = value
            elif key == "client_key":
                self.client_key = value
            elif key == "client_secret":
                self.client_secret = value.split()[0]
            elif key == "user":
                name, *pairs = value.split()
                fields = dict(pair.split("=", 1) for pair in pairs)
                self.users[name] = User(name, fields["open_id"], fields["access_token"], fields["refresh_token"])
        return self

    def _read_banner(self, timeout: float) -> list[str]:
        """Read the lines the emulator prints at start (4 plus one per user), without blocking past ``timeout``."""
        assert self.process is not None and self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        wanted = 4 + len(self.user_names)
        data = b""
        deadline = time.monotonic() + timeout
        while data.count(b"\n") < wanted:
            ready, _, _ = select.select([descriptor], [], [], max(deadline - time.monotonic(), 0))
            more = os.read(descriptor, 65536) if ready else b""
            if not more:
                self.stop()
                raise RuntimeError(f"the emulator did not start; see {self.folder / 'emulator.log'}")
            data += more
        return data.decode().splitlines()

    def control(self, method: str, action: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call the emulator's control endpoint (``/_emulator/ACTION``) and return its JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}/_emulator/{action}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=60, context=self.ssl_context) as answer:
            return json.loads(answer.read())

    def records(self) -> dict[str, Any]:
        """Every request and publish the emulator has seen: ``{"requests": [...], "publishes": [...]}``."""
        return self.control("GET", "records")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DaemonProcess:
    """``watchfolder run`` on its own root and state_dir, signed in to the emulator's users.

    ``watch`` and ``upload`` are the config's sections, ``tiktok`` overrides keys of its section (rate limits
    and caps are off unless set there); ``runner`` replaces the ``watchfolder`` command
    (the backlog benchmark runs it under bench.trace). ``start`` returns once the daemon logs
    ``daemon_ready``; ``events`` reads its JSON log lines so far.
    """

    def __init__(self, folder: Path, emulator: EmulatorProcess, accounts: Sequence[str], *,
                 watch: Mapping[str, Any], upload: Mapping[str, Any] | None = None,
                 runner: Sequence[str] | None = None, tiktok: Mapping[str, Any] | None = None) -> None:
        self.folder = folder.resolve()
        self.emulator = emulator
        self.accounts = list(accounts)
        self.root = self.folder / "tiktok"
        self.state_dir = self.folder / "state"
        self.config_path = self.folder / "config.yaml"
        self.log_path = self.folder / "daemon.log"
        self.watch = dict(watch)
        self.upload = {"status_poll_seconds": 0.2, **(upload or {})}
        self.tiktok = dict(tiktok or {})
        self.runner = list(runner) if runner else watchfolder_command()
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._events: list[dict[str, Any]] = []
        self._offset = 0
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("WATCHFOLDER_")}
        self.env["WATCHFOLDER_CLIENT_SECRET"] = emulator.client_secret
        if emulator.tls:
            # The daemon's two HTTP stacks find the self-signed certificate through the usual variables:
            # http.client (chunk PUTs) through OpenSSL's SSL_CERT_FILE, requests through its own.
            self.env["SSL_CERT_FILE"] = str(emulator.tls[0])
            self.env["REQUESTS_CA_BUNDLE"] = str(emulator.tls[0])

    @property
    def command(self) -> list[str]:
        return [*self.runner, "run", "-c", str(self.config_path)]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def inbox(self, account: str) -> Path:
        return self.root / account / "inbox"

    def prepare(self, *, sign_in: bool = True) -> DaemonProcess:
        """Write the config and (unless ``sign_in`` is false: the state_dir holds tokens already) store each
        account's tokens with ``watchfolder auth import``."""
        self.root.mkdir(parents=True, exist_ok=True)
        document = {
            "root": str(self.root), "state_dir": str(self.state_dir), "log_level": "info",
            "tiktok": {"client_key": self.emulator.client_key, "api_base_url": self.emulator.base_url,
                       "init_per_minute": 0, "status_per_minute": 0, "creator_info_per_minute": 0,
                       "drafts_per_day": 0, "posts_per_day": 0,   # the emulator's caps are off too
                       **self.tiktok},
            "watch": self.watch, "upload": self.upload,
            "accounts": {name: {"mode": "inbox"} for name in self.accounts},
        }
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        for name in self.accounts if sign_in else ():
            user = self.emulator.users[name]
            # "--opt=value": an open_id may begin with "-".
            done = subprocess.run(
                [*watchfolder_command(), "auth", "import", name, "-c", str(self.config_path),
                 f"--access-token={user.access_token}", f"--refresh-token={user.refresh_token}",
                 f"--open-id={user.open_id}", "--scope=user.info.basic,video.upload,video.publish"],
                capture_output=True, text=True, env=self.env, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"watchfolder auth import {name} failed: {done.stderr.strip()}")
        return self

    def start(self, timeout: float = 120.0) -> DaemonProcess:
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process's life
        self._events, self._offset = [], 0   # a restart on the same folder starts a new log
        self.started_at = time.time()
        self.process = _started(subprocess.Popen(self.command, stdout=log, stderr=log, env=self.env,
                                                 cwd=Path(__file__).resolve().parent.parent))
        log.close()
        self.wait_for("daemon_ready", timeout)
        return self

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The daemon's log events so far (those called ``name``), each with ``at`` (epoch seconds) added."""
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].splitlines():
            if line.startswith(b"{"):
                event = json.loads(line)
                event["at"] = parse_time(event.get("timestamp", ""))
                self._events.append(event)
        return [e for e in self._events if name is None or e.get("event") == name]

    def wait_for(self, name: str, timeout: float, count: int = 1) -> list[dict[str, Any]]:
        """Wait until the daemon has logged ``count`` events called ``name``; return them.

        Raise RuntimeError if the daemon exits or the time runs out first."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(name)
            if len(found) >= count:
                return found
            if self.process is not None and self.process.poll() is not None:
                tail = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"the daemon exited ({self.process.returncode}): " + "\n".join(tail))
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {count} × {name} from the daemon within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.02)

    def stop(self) -> int | None:
        """SIGTERM, as systemd stops it; return its exit code (None if it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def parse_time(stamp: str) -> float:
    """``2026-11-26T10:00:00.123456Z`` → epoch seconds (0.0 for an empty or odd stamp)."""
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def upload_window(records: Mapping[str, Any], publish_id: str) -> tuple[float, float, int]:
    """From the emulator's records, return (start, end, bytes) of one upload's streaming window: from the
    first chunk's answer to the last chunk's, and the bytes of every chunk after the first. One clock and
    one definition for every client; whatever a sender does once before its first chunk (the daemon's
    commit and rename after the init) is left out. A one-chunk upload is timed from the init's answer."""
    mine = [r for r in records["requests"] if r.get("publish_id") == publish_id]
    answers = sorted(r["at"] for r in mine if r["endpoint"] == "upload")
    publish = next(p for p in records["publishes"] if p["publish_id"] == publish_id)
    ranges = publish["chunk_ranges"]
    if len(answers) < 2:
        init = min(r["at"] for r in mine if r["endpoint"].endswith("_init"))
        return init, answers[-1], int(publish["declared_size"])
    first, last = ranges[0]
    return answers[0], answers[-1], int(publish["declared_size"]) - (last - first + 1)
