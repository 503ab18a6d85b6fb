"""Timed uploads of one file: by the daemon (``watchfolder run``), by curl, and by the bare Python clients.

Every upload is timed by the emulator's own records, from the init's answer to the last chunk's answer,
so all clients are measured with one clock and one definition. CPU is the uploader's own: the daemon's
from /proc (interpolated to that window), a bare client's from getrusage around its PUT loop, curl's from
wait4. The emulator's CPU over the same window is kept too: it is the receiver, and on two cores it is
what limits every client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import clients
from bench.proc import Sampler
from bench.rig import DaemonProcess, EmulatorProcess, request_times
from watchfolder.tiktok.chunks import ChunkPlan

SETTLE = 0.5


@dataclass
class Upload:
    """One upload: who sent it, how many bytes, the upload window (seconds), the sender's CPU (user,
    system) in that window and the emulator's; for the daemon also the whole item."""

    client: str
    size: int
    seconds: float
    user: float
    system: float
    emulator_cpu: float
    item_seconds: float = 0.0      # daemon: from the rename into inbox/ to the sidecar
    item_cpu: float = 0.0          # daemon: user + system over the whole item
    peak_rss: int = 0              # daemon: VmHWM at the end, bytes
    verified: bool = True          # the bytes the emulator received hash to the file's SHA-256

    @property
    def rate(self) -> float:
        """GB/s (10^9 bytes)."""
        return self.size / self.seconds / 1e9

    @property
    def cpu_per_gb(self) -> float:
        return (self.user + self.system) / (self.size / 1e9)


def daemon_upload(folder: Path, emulator: EmulatorProcess, emulator_sampler: Sampler, path: Path, account: str,
                  chunk_size: int) -> Upload:
    """Start a fresh daemon signed in as ``account``, rename ``path`` into its inbox, wait for the sidecar,
    move the file back to ``path`` and stop the daemon; return the measured upload."""
    daemon = DaemonProcess(folder, emulator, [account], watch={"settle_seconds": SETTLE, "observer": "inotify"},
                           upload={"chunk_size": chunk_size}).prepare().start()
    try:
        sampler = Sampler(daemon.pid).start()
        dropped = time.time()
        os.rename(path, daemon.inbox(account) / path.name)
        finished = daemon.wait_for("item_finished", 600)[0]
        sampler.stop()
        with open(f"/proc/{daemon.pid}/status", encoding="ascii") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
        if finished.get("result") != "done":
            raise RuntimeError(f"the daemon did not upload {path.name}: see {daemon.log_path}")
        records = emulator.records()
        start, end = request_times(records, finished["publish_id"])
        user, system = sampler.cpu_between(start, end)
        item_user, item_system = sampler.cpu_between(dropped, finished["at"])
        sidecar = json.loads((daemon.root / account / "done" / f"{path.name}.json").read_text(encoding="utf-8"))
        received = next(p for p in records["publishes"] if p["publish_id"] == finished["publish_id"])
        emulator_user, emulator_system = emulator_sampler.cpu_between(start, end)
        os.rename(daemon.root / account / "done" / path.name, path)
    finally:
        daemon.stop()
    return Upload("watchfolder run", sidecar["size"], end - start, user, system, emulator_user + emulator_system,
                  item_seconds=finished["at"] - dropped, item_cpu=item_user + item_system, peak_rss=peak,
                  verified=received["sha256"] == sidecar["sha256"])


def bare_upload(mode: str, emulator: EmulatorProcess, emulator_sampler: Sampler, path: Path, account: str,
                chunk_size: int) -> Upload:
    """Run ``python -m bench.clients MODE`` against the emulator; return the measured upload."""
    command = [sys.executable, "-m", "bench.clients", mode, "--base-url", emulator.base_url, "--token",
               emulator.users[account].access_token, "--file", str(path), "--chunk-size", str(chunk_size)]
    if emulator.tls:
        command += ["--cafile", str(emulator.tls[0])]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench.clients {mode} failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout)
    start, end = request_times(emulator.records(), result["publish_id"])
    emulator_user, emulator_system = emulator_sampler.cpu_between(start, end)
    names = {"httpclient": "http.client, 1 MiB blocks", "sendfile": "http.client + socket.sendfile",
             "requests": "requests, file object"}
    return Upload(names[mode], path.stat().st_size, end - start, result["cpu_user"], result["cpu_system"],
                  emulator_user + emulator_system)


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
                account: str) -> tuple[Upload, list[str]]:
    """Init from here, then one curl process PUTs every chunk file; return the upload and curl's command."""
    context = emulator.ssl_context
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
    start, end = request_times(emulator.records(), publish_id)
    emulator_user, emulator_system = emulator_sampler.cpu_between(start, end)
    return Upload("curl", chunk_plan.size, end - start, usage.ru_utime, usage.ru_stime,
                  emulator_user + emulator_system), command


def shown_curl(command: list[str], count: int) -> str:
    """curl's command line for the docs: the first transfer, with the upload URL's token hidden."""
    first = command[:command.index("--next")] if "--next" in command else command
    shown = ["'UPLOAD_URL'" if part.startswith("http") else
             (f"'{part}'" if " " in part or part.endswith(":") else part) for part in first]
    return " ".join(shown) + f" --next … (one transfer per chunk, {count} in all)"
