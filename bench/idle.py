"""Benchmark 5: what the daemon costs with nothing to do, 10,000 items in ``done/`` (left by benchmark 4).

``watchfolder run`` (no step timers) restarts on the backlog's root and state. After its start-up it is
left alone: 10 minutes with inotify (the goal's span), then a shorter run with the polling observer for
context. Over each span: the daemon's CPU (``/proc/PID/stat``), its I/O counters (``/proc/PID/io``:
``write_bytes`` is what it sent towards the disk, ``wchar``/``syscw`` every write-like call, sockets
included), every file under ``state_dir`` whose size or mtime changed (or that came or went), and every
opening of a ``done/`` folder or a file in it (an inotify watch, IN_OPEN).
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from bench.backlog import SETTLE, accounts
from bench.proc import cpu_seconds, io_counters
from bench.report import INFO, Figure, Section, verdict
from bench.rig import Context, DaemonProcess, EmulatorProcess

CPU_GOAL = 0.002      # of one core
IO_KEYS = ("write_bytes", "wchar", "syscw")


class FolderOpens:
    """Counts, with inotify, every time a process opens one of ``folders`` or a file in it (IN_OPEN)."""

    IN_OPEN, IN_NONBLOCK = 0x20, 0o4000

    def __init__(self, folders: list[Path]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(self.IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for folder in folders:
            if self._libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_OPEN) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")

    def count(self) -> int:
        """Return how many openings happened since the last call."""
        seen = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            offset = 0
            while offset < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, offset)
                seen += bool(mask & self.IN_OPEN)
                offset += 16 + length

    def close(self) -> None:
        os.close(self.fd)


def file_states(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (relative name → (size, mtime in ns))."""
    states = {}
    for path in folder.rglob("*"):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            states[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return states


def changed_files(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The names that came, went, or changed size or mtime between two ``file_states``."""
    return sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


@dataclass(frozen=True)
class Idle:
    """One idle span of one observer."""

    seconds: float
    cpu_share: float
    io: dict[str, int]       # the growth of each IO_KEYS counter
    changed: list[str]       # state_dir files that changed
    opened: int              # openings of done/ or a file in it


def measure(daemon: DaemonProcess, done_folders: list[Path], warmup: float, duration: float) -> Idle:
    time.sleep(warmup)   # start-up (imports, the first scan of the inboxes) is not idling
    opens = FolderOpens(done_folders)
    try:
        files = file_states(daemon.state_dir)
        io = io_counters(daemon.pid)
        cpu, start = sum(cpu_seconds(daemon.pid)), time.monotonic()
        time.sleep(duration)
        used, seconds = sum(cpu_seconds(daemon.pid)) - cpu, time.monotonic() - start
        io_after = io_counters(daemon.pid)
        return Idle(seconds, used / seconds, {key: io_after[key] - io[key] for key in IO_KEYS},
                    changed_files(files, file_states(daemon.state_dir)), opens.count())
    finally:
        opens.close()


def run_idle(ctx: Context) -> list[Section]:
    names = accounts(ctx)
    folder = ctx.work / "backlog"
    done_folders = [folder / "daemon" / "tiktok" / name / "done" for name in names]
    files = sum(1 for done in done_folders for _ in done.glob("*.mp4"))
    warmup, poll = (0.2, 1.0) if ctx.smoke else (5.0, 5.0)
    spans = {"inotify": 1.0 if ctx.smoke else 600.0, "polling": 0.5 if ctx.smoke else 120.0}
    results: dict[str, Idle] = {}
    with EmulatorProcess(ctx.work / "idle" / "emulator", names) as emulator:
        for observer, duration in spans.items():
            ctx.say(f"idle: {observer}, {duration:.0f} s")
            daemon = DaemonProcess(folder / "daemon", emulator, names,
                                   watch={"observer": observer, "poll_interval": poll, "settle_seconds": SETTLE}
                                   ).prepare(sign_in=False).start()   # idle: no call to TikTok; the tokens stay
            try:
                results[observer] = measure(daemon, done_folders, warmup, duration)
            finally:
                daemon.stop()
    figures = []
    for observer, idle in results.items():
        goal = observer == "inotify"   # the goals are over the 10-minute span; polling is context
        span = f"{observer}, {idle.seconds / 60:.1f} min" if idle.seconds >= 60 else f"{observer}, {idle.seconds:.1f} s"
        figures += [
            Figure(f"idle CPU, {span}, {files:,} files in done/",
                   f"{idle.cpu_share * 100:.3f} % of a core ({idle.cpu_share * 3600:.1f} CPU-s per hour)",
                   "≤ 0.2 % of a core" if goal else "", verdict(idle.cpu_share <= CPU_GOAL) if goal else INFO,
                   "" if idle.cpu_share <= CPU_GOAL else "Missed: profile the idle main loop (py-spy or "
                   "cProfile of its thread) for a wake-up or a query that grows with the number of items"),
            Figure(f"idle disk writes (write_bytes), {span}", f"{idle.io['write_bytes']:,} bytes",
                   "0 bytes" if goal else "", verdict(idle.io["write_bytes"] == 0) if goal else INFO,
                   f"wchar grew by {idle.io['wchar']:,} bytes in {idle.io['syscw']:,} write-like calls (sockets, "
                   "pipes and the page cache included: the log and any loopback traffic count there)"
                   + (_missed_writes(idle) if goal else "")),
            Figure(f"state_dir files changed while idle, {span}", f"{len(idle.changed)}",
                   "0" if goal else "", verdict(not idle.changed) if goal else INFO,
                   ("changed: " + ", ".join(idle.changed[:5])) if idle.changed else ""),
            Figure(f"done/ folders or files opened while idle, {span}", f"{idle.opened}",
                   "0" if observer == "polling" else "", verdict(idle.opened == 0) if observer == "polling"
                   else INFO),
        ]
    inotify, polling = spans["inotify"], spans["polling"]
    body = [
        f"After the backlog, `watchfolder run` (no step timers) restarts on the same root and state: {files:,} "
        f"files and their sidecars in `done/`, {files:,} finished items in the store, empty inboxes. After "
        f"{warmup:g} s of start-up the daemon is left alone for {inotify:g} s with inotify (the span the goals "
        f"are set over), then, restarted, {polling:g} s with the polling observer at `poll_interval: {poll:g}` "
        "(context only: a shorter span, to keep the run short). Over each span: the daemon's user + system CPU "
        "from `/proc/<pid>/stat`; its `/proc/<pid>/io` counters (every thread): `write_bytes`, what it sent "
        "towards the disk, is the goal's figure, and `wchar`/`syscw` count every write-like call; every file "
        "under `state_dir` (the database, its WAL and shared memory, tokens) compared by size and mtime before "
        "and after; and an inotify watch on every `done/` folder counts each time any process opens the folder "
        "or a file in it (IN_OPEN): a poll that walked `done/` would open it every interval.",
        "",
        "`--only idle` runs the backlog first: it is what fills `done/`.",
    ]
    return [Section(5, "Idle cost with 10,000 files in done/", "python -m bench --only idle", figures, body)]


def _missed_writes(idle: Idle) -> str:
    if idle.io["write_bytes"] == 0 and not idle.changed:
        return ""
    where = ", ".join(idle.changed[:3]) or "no file under state_dir changed, so elsewhere (the log file?)"
    return (f". Missed: something was written while idle ({where}); find the writer with "
            "strace -f -e trace=write,pwrite64")
