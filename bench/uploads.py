"""Timed uploads of one file: by the daemon (``watchfolder run``), by curl, and by the bare Python clients.

Every upload is timed by the emulator's own records, from the first chunk's answer to the last chunk's
answer, so all clients are measured with one clock and one definition. CPU is the uploader's own: the daemon's
from /proc (interpolated to that window), a bare client's from getrusage around its PUT loop, curl's from
wait4. The emulator's CPU over the same window is kept too: it is the receiver, and on two cores it is
what limits every client.

Warm memory: a virtual machine with free page reporting (virtio-balloon) hands memory that has been free
for a couple of seconds back to its host, and the next touch of it is slow. The emulator frees the bytes
of each upload when it completes, so a client that starts its upload a few seconds later (the daemon
settles and hashes first) met a receiver up to 40 % slower than one that started at once. ``warm_memory``
touches and frees fresh memory just before a bare client starts, and ``Warmer`` keeps doing so from the
daemon's drop until its init, so every client meets the receiver in the same state.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import clients
from bench.proc import Sampler
from bench.rig import DaemonProcess, EmulatorProcess, upload_window
from watchfolder.tiktok.chunks import ChunkPlan

SETTLE = 0.5


@dataclass
class Upload:
    """One upload: who sent it, the bytes and seconds of its window (``rig.upload_window``), the sender's CPU
    (user, system) in that window and the emulator's; for the daemon also the whole item."""

    client: str
    size: int                      # bytes in the window: every chunk after the first
    seconds: float
    user: float
    system: float
    emulator_cpu: float
    file_size: int = 0             # the whole file
    item_seconds: float = 0.0      # daemon: from the rename into inbox/ to the sidecar
    item_cpu: float = 0.0          # daemon: user + system over the whole item
    peak_rss: int = 0              # daemon: VmHWM at the end, bytes
    verified: bool = True          # the bytes the emulator received hash to the file's SHA-256
    chunk_ms: float = 0.0          # median time from one chunk's answer to the next one's
    first_ms: float = 0.0          # from the init's answer to the first chunk's answer
    cipher: str = ""               # bare clients over TLS: the cipher the server picked
    hashed_while_sending: bool = False   # daemon: its log says the content hash was built from the bytes sent

    @property
    def rate(self) -> float:
        """GB/s (10^9 bytes)."""
        return self.size / self.seconds / 1e9

    @property
    def cpu_per_gb(self) -> float:
        return (self.user + self.system) / (self.size / 1e9)


PIECE = 64 * 1024 * 1024


def warm_memory(size: int, stop: threading.Event | None = None) -> None:
    """Touch ``size`` bytes of fresh memory, one byte a page, then free them all (see the module docstring).

    It goes in 64 MiB pieces held until the end, so a ``stop`` request is seen within one piece.
    """
    held = []
    while size > 0 and not (stop is not None and stop.is_set()):
        piece = bytearray(min(PIECE, size))
        piece[::4096] = b"\x01" * len(range(0, len(piece), 4096))
        held.append(piece)
        size -= len(piece)
    held.clear()


class Warmer:
    """Calls ``warm_memory(size)`` every ``interval`` seconds in a thread until ``stop``."""

    def __init__(self, size: int, interval: float = 0.4) -> None:
        self.size, self.interval = size, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="warmer", daemon=True)

    def start(self) -> Warmer:
        if self.size:
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            warm_memory(self.size, self._stop)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def daemon_upload(folder: Path, emulator: EmulatorProcess, emulator_sampler: Sampler, path: Path, account: str,
                  chunk_size: int, warm: int = 0) -> Upload:
    """Start a fresh daemon signed in as ``account``, rename ``path`` into its inbox, wait for the sidecar,
    move the file back to ``path`` and stop the daemon; return the measured upload. With ``warm``, keep that
    many bytes of memory warm from the drop until the daemon's init."""
    daemon = DaemonProcess(folder, emulator, [account], watch={"settle_seconds": SETTLE, "observer": "inotify"},
                           upload={"chunk_size": chunk_size}).prepare().start()
    try:
        sampler = Sampler(daemon.pid).start()
        warmer = Warmer(warm).start()
        dropped = time.time()
        os.rename(path, daemon.inbox(account) / path.name)
        try:
            # Until the init: stopping when the file is taken in, before its hash, left the receiver cold
            # again by the time the chunks came. The window opens at the first chunk's answer.
            daemon.wait_for("init_done", 600)
        finally:
            warmer.stop()
        finished = daemon.wait_for("item_finished", 600)[0]
        sampler.stop()
        while_sent = any(e.get("read") == "while_sent" for e in daemon.events("content_hashed"))
        with open(f"/proc/{daemon.pid}/status", encoding="ascii") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
        if finished.get("result") != "done":
            raise RuntimeError(f"the daemon did not upload {path.name}: see {daemon.log_path}")
        records = emulator.records()
        start, end, size = upload_window(records, finished["publish_id"])
        per_chunk, first = chunk_interval(records, finished["publish_id"])
        user, system = sampler.cpu_between(start, end)
        item_user, item_system = sampler.cpu_between(dropped, finished["at"])
        sidecar = json.loads((daemon.root / account / "done" / f"{path.name}.json").read_text(encoding="utf-8"))
        received = next(p for p in records["publishes"] if p["publish_id"] == finished["publish_id"])
        emulator_user, emulator_system = emulator_sampler.cpu_between(start, end)
        os.rename(daemon.root / account / "done" / path.name, path)
    finally:
        daemon.stop()
    return Upload("watchfolder run", size, end - start, user, system, emulator_user + emulator_system,
                  file_size=sidecar["size"], item_seconds=finished["at"] - dropped, item_cpu=item_user + item_system,
                  peak_rss=peak, verified=received["sha256"] == sidecar["sha256"], chunk_ms=per_chunk, first_ms=first,
                  hashed_while_sending=while_sent)


def bare_upload(mode: str, emulator: EmulatorProcess, emulator_sampler: Sampler, path: Path, account: str,
                chunk_size: int, warm: int = 0) -> Upload:
    """Run ``python -m bench.clients MODE`` against the emulator (after ``warm_memory(warm)``); return the
    measured upload."""
    command = [sys.executable, "-m", "bench.clients", mode, "--base-url", emulator.base_url, "--token",
               emulator.users[account].access_token, "--file", str(path), "--chunk-size", str(chunk_size)]
    if emulator.tls:
        command += ["--cafile", str(emulator.tls[0])]
    warm_memory(warm)
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench.clients {mode} failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout)
    records = emulator.records()
    start, end, size = upload_window(records, result["publish_id"])
    emulator_user, emulator_system = emulator_sampler.cpu_between(start, end)
    names = {"httpclient": "http.client, 1 MiB blocks", "hashing": "http.client, 1 MiB blocks + SHA-256",
             "memory": "http.client, from memory (no file, no hash)", "sendfile": "http.client + socket.sendfile",
             "requests": "requests, file object"}
    per_chunk, first = chunk_interval(records, result["publish_id"])
    share = size / path.stat().st_size   # its CPU covers every chunk; the window, all but the first
    return Upload(names[mode], size, end - start, result["cpu_user"] * share, result["cpu_system"] * share,
                  emulator_user + emulator_system, file_size=path.stat().st_size, chunk_ms=per_chunk, first_ms=first,
                  cipher=result.get("cipher", ""))


def chunk_interval(records: dict[str, Any], publish_id: str) -> tuple[float, float]:
    """Return (the median milliseconds between the answers to two consecutive chunks of one upload, 0 for
    one chunk; the milliseconds from the init's answer to the first chunk's). The first is one chunk's
    transfer plus whatever the sender does before starting the next."""
    mine = [r for r in records["requests"] if r.get("publish_id") == publish_id]
    times = sorted(r["at"] for r in mine if r["endpoint"] == "upload")
    init = min(r["at"] for r in mine if r["endpoint"].endswith("_init"))
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    return (statistics.median(gaps) * 1000 if gaps else 0.0), (times[0] - init) * 1000


def split_chunks(path: Path, chunk_plan: ChunkPlan, folder: Path) -> list[Path]:
    """Copy each chunk of ``path`` into a file of its own (in-kernel copy), for curl; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as source:
        for index, (first, last) in enumerate(chunk_plan.ranges()):
            part = folder / f"chunk-{index:04d}"
            with open(part, "wb") as target:
                left, offset = last - first + 1, first
                while left:
                    copied = os.copy_file_range(source.fileno(), target.fileno(), left, offset)
                    if not copied:
                        raise OSError(f"short copy of {path} at byte {offset}")
                    offset += copied
                    left -= copied
            parts.append(part)
    return parts


def curl_upload(emulator: EmulatorProcess, emulator_sampler: Sampler, chunk_plan: ChunkPlan, parts: list[Path],
                account: str, warm: int = 0) -> tuple[Upload, list[str]]:
    """Init from here, then one curl process PUTs every chunk file; return the upload and curl's command."""
    context = emulator.ssl_context
    warm_memory(warm)   # before the init, as for the other bare clients
    publish_id, upload_url = clients.init(emulator.base_url, emulator.users[account].access_token, chunk_plan,
                                          context)
    command = clients.curl_command(upload_url, parts, chunk_plan, str(emulator.tls[0]) if emulator.tls else None)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)   # wait4: curl's own CPU, not the rest of our children's
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    if process.returncode != 0:
        raise RuntimeError(f"curl failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    records = emulator.records()
    start, end, size = upload_window(records, publish_id)
    emulator_user, emulator_system = emulator_sampler.cpu_between(start, end)
    per_chunk, first = chunk_interval(records, publish_id)
    share = size / chunk_plan.size   # its CPU covers every chunk; the window, all but the first
    return Upload("curl", size, end - start, usage.ru_utime * share, usage.ru_stime * share,
                  emulator_user + emulator_system,
                  file_size=chunk_plan.size, chunk_ms=per_chunk, first_ms=first), command


def shown_curl(command: list[str], count: int) -> str:
    """curl's command line for the docs: the first transfer, with the upload URL (it holds a token) hidden and
    files named without their folder."""
    first = command[:command.index("--next")] if "--next" in command else command
    shown = ["'UPLOAD_URL'" if part.startswith("http") else Path(part).name if part.startswith("/") else
             (f"'{part}'" if " " in part or part.endswith(":") else part) for part in first]
    return " ".join(shown) + f" --next … (one transfer per chunk, {count} in all)"


def hash_cost(path: Path) -> float:
    """Return the CPU-seconds per GB this process needs to SHA-256 ``path`` the way the daemon does (1 MiB
    blocks read into one buffer): the part of the daemon's CPU that the content hash accounts for."""
    digest, buffer = hashlib.sha256(), bytearray(1024 * 1024)
    view = memoryview(buffer)
    start = time.process_time()
    with open(path, "rb") as file:
        while count := file.readinto(buffer):
            digest.update(view[:count])
    return (time.process_time() - start) / (path.stat().st_size / 1e9)
