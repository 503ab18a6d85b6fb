"""Benchmarks 4 (a backlog of 10,000 small files across 10 accounts) and 5 (idle cost with them in done/).

The backlog daemon runs under ``bench.trace`` (``watchfolder run`` with step timers), so the time of each
file's trip can be split into TikTok's part (the HTTP calls) and ours (store, moves, sidecar, hash …).
The idle benchmark then restarts plain ``watchfolder run`` on the same folders and state, 10,000 items in
``done/``, once with inotify and once polling every 5 s, and counts CPU and every opening of ``done/``.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sqlite3
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.proc import Sampler, cpu_seconds
from bench.report import INFO, Figure, Section, verdict
from bench.rig import Context, DaemonProcess, EmulatorProcess
from watchfolder.media import samples
from watchfolder.store.store import Store

SIZE = 8192
SETTLE = 1.0
HTTP_STEPS = ("http_api", "http_chunk")
OURS = ("store_write", "store_read", "finish", "sidecar", "moves", "hash", "prepare", "worker", "tokens")


def accounts(ctx: Context) -> list[str]:
    return [f"account{number:02d}" for number in range(2 if ctx.smoke else 10)]


def make_files(daemon: DaemonProcess, names: list[str], per_account: int) -> int:
    """Fill each inbox with ``per_account`` distinct small MP4s (one template, a different stamp in the
    last 8 bytes of each, so dedupe sees different content); return how many."""
    template = bytearray(samples.write_mp4(daemon.folder / "template.mp4", size=SIZE, seed=77).read_bytes())
    serial = 0
    for name in names:
        inbox = daemon.inbox(name)
        inbox.mkdir(parents=True, exist_ok=True)
        for index in range(per_account):
            serial += 1
            template[-8:] = serial.to_bytes(8, "big")
            (inbox / f"clip-{index:05d}.mp4").write_bytes(template)
    return serial


def run(ctx: Context) -> list[Section]:
    names = accounts(ctx)
    per_account = 20 if ctx.smoke else 1000
    folder = ctx.work / "backlog"
    trace_path = folder / "trace.json"
    with EmulatorProcess(folder / "emulator", names) as emulator:
        daemon = DaemonProcess(folder / "daemon", emulator, names,
                               watch={"observer": "inotify", "settle_seconds": SETTLE},
                               runner=[sys.executable, "-m", "bench.trace", str(trace_path)]).prepare()
        total = make_files(daemon, names, per_account)
        os.sync()
        ctx.say(f"backlog: {total:,} files in {len(names)} inboxes; starting the daemon")
        daemon.start()
        sampler = Sampler(daemon.pid, 0.25).start()
        last_said = time.monotonic()
        while len(daemon.events("item_finished")) < total:
            if daemon.process is not None and daemon.process.poll() is not None:
                raise RuntimeError(f"the daemon exited; see {daemon.log_path}")
            if time.monotonic() - last_said > 15:
                ctx.say(f"backlog: {len(daemon.events('item_queued')):,} taken in, "
                        f"{len(daemon.events('item_finished')):,} finished")
                last_said = time.monotonic()
            time.sleep(0.2)
        sampler.stop()
        cpu = sampler.samples[-1].cpu
        daemon.stop()
    queued = daemon.events("item_queued")
    finished = daemon.events("item_finished")
    done = sum(1 for name in names for _ in (daemon.root / name / "done").glob("*.mp4.json"))
    intake = (min(e["at"] for e in queued) - daemon.started_at, max(e["at"] for e in queued) - daemon.started_at)
    elapsed = max(e["at"] for e in finished) - daemon.started_at
    trace = json.loads(trace_path.read_text(encoding="utf-8"))
    store_cost = store_write_cost(daemon.state_dir, folder / "store-copy")
    return [_section(trace, daemon, total, done, intake, elapsed, cpu, len(names), store_cost)]


def store_write_cost(state_dir: Path, scratch: Path, writes: int = 400) -> tuple[float, float, str]:
    """On a copy of the backlog's state, time ``Store.update`` (one write transaction and the re-read that
    follows it) from one thread, then from four at once; return the milliseconds per write of each and the
    store's ``PRAGMA synchronous`` (FULL: every commit waits for an fsync)."""
    shutil.copytree(state_dir, scratch)
    probe = Store(scratch)
    items = [item.id for item in probe.items()]
    level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(probe.conn.execute("PRAGMA synchronous").fetchone()[0],
                                                              "unknown")
    probe.close()

    def work(count: int) -> None:
        store = Store(scratch)
        for number in range(count):
            store.update(items[number % len(items)], now=time.time(), detail="bench")
        store.close()

    start = time.perf_counter()
    work(writes)
    alone = (time.perf_counter() - start) / writes * 1000
    threads = [threading.Thread(target=work, args=(writes // 4,)) for _ in range(4)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared = (time.perf_counter() - start) / (writes // 4) * 1000   # as each of the four threads saw it
    shutil.rmtree(scratch, ignore_errors=True)
    return alone, shared, level


def _section(trace: dict[str, Any], daemon: DaemonProcess, total: int, done: int, intake: tuple[float, float],
             elapsed: float,
             cpu: float, account_count: int, store_cost: tuple[float, float, str]) -> Section:
    steps = trace["steps"]

    def per_file(step: str, kind: str = "self") -> float:
        return steps.get(step, {}).get(kind, 0.0) / total * 1000

    http = sum(per_file(step, "inclusive") for step in HTTP_STEPS)
    ours = per_file("worker", "inclusive") - http
    slowest = max(OURS, key=per_file)
    gap = _median_gap(trace["runs"], daemon.state_dir)
    figures = [
        Figure(f"{total:,} files present at start: all taken in", f"{intake[1]:.1f} s", "< 30 s",
               verdict(intake[1] < 30), _intake_note(intake, total, steps, account_count)),
        Figure(f"all {total:,} in done/ with a sidecar", f"{elapsed:.1f} s ({total / elapsed:.0f} files/s)",
               note=f"{done:,} sidecars found in done/"),
        Figure("our own time per file (worker time outside the HTTP calls)", f"{ours:.1f} ms", "< 20 ms",
               verdict(ours < 20), _overhead_note(ours, per_file, http, steps, total, store_cost)),
        Figure("daemon CPU per file (user + sys, every thread)", f"{cpu / total * 1000:.1f} ms", verdict=INFO),
        Figure("slowest step of ours", f"{slowest}: {per_file(slowest):.1f} ms per file", verdict=INFO),
    ]
    body = [
        f"{account_count} accounts × {total // account_count:,} distinct {SIZE:,}-byte MP4s are in the inboxes "
        "before `watchfolder run` starts (inotify, settle_seconds = 1, rate limits off in the daemon and the "
        "emulator). The daemon runs under `python -m bench.trace` (the same CLI with step timers); the "
        "table is wall time per file, summed over the worker threads (at most four run at once, on two cores "
        "shared with the emulator, so a step's time includes waiting for the CPU and for SQLite's write lock).",
        "",
        "| step | calls | ms per file (own) | ms per file (with the steps it calls) |",
        "| --- | --- | --- | --- |",
        *(f"| {step} | {value['calls']:,} | {value['self'] / total * 1000:.2f} | "
          f"{value['inclusive'] / total * 1000:.2f} |"
          for step, value in sorted(steps.items(), key=lambda kv: -kv[1]["self"])),
        "",
        "Steps: `worker` is one item's trip (`Pipeline.run`); `http_api` the JSON calls (init, status); "
        "`http_chunk` the chunk PUT; `store_write`/`store_read` the SQLite calls; `finish` the final move and "
        "sidecar (its own time includes waiting for the finisher's lock); `sidecar` writing it (two fsyncs); "
        "`moves` the renames; `intake` the main loop's intake pass (`media_check` inside it).",
        "",
        f"Between two items of the same account the median gap was {gap * 1000:.0f} ms: the time to wait for one "
        "of the four worker threads while the other accounts use them.",
    ]
    return Section(4, "Backlog: 10,000 small files across 10 accounts at start", "python -m bench --only backlog",
                   figures, body)


def _intake_note(intake: tuple[float, float], total: int, steps: dict[str, Any], account_count: int) -> str:
    first, last = intake
    lookups = steps.get("settings_lookup", {})
    calls = lookups.get("calls", 0) / total
    note = (f"from starting the process to the last `item_queued`: {first:.1f} s to the first (start-up, the first "
            f"look at every file, settle_seconds = {SETTLE:g}), then {last - first:.1f} s to record them all, "
            f"{(last - first) / total * 1000:.2f} ms per file. The settings-file lookup ran {calls:.1f} times per "
            f"file and took {lookups.get('inclusive', 0.0) / total * 1000:.2f} ms per file over the whole run; each "
            f"call lists the file's whole inbox ({total // account_count:,} entries here)")
    if last >= 30:
        note += (". Missed: that listing makes recording a file cost more the fuller its inbox is (quadratic in "
                 "an inbox's size). Next step: list each inbox once per intake pass and find settings files in "
                 "that listing")
    return note


def _overhead_note(ours: float, per_file: Any, http: float, steps: dict[str, Any], total: int,
                   store_cost: tuple[float, float, str]) -> str:
    parts = ", ".join(f"{step} {per_file(step):.1f}" for step in ("store_write", "store_read", "finish", "sidecar",
                                                                 "moves", "hash", "prepare", "worker"))
    writes = steps.get("store_write", {}).get("calls", 0) / total
    reads = steps.get("store_read", {}).get("calls", 0) / total
    each = per_file("store_write") / writes if writes else 0.0
    alone, shared, level = store_cost
    note = (f"a file's trip took {ours + http:.1f} ms of worker time, {http:.1f} ms of it in HTTP calls; ours, in "
            f"ms: {parts}. Per file the store is written {writes:.0f} times and read {reads:.0f} times; a write "
            f"(`Store.update` with its re-read) took {each:.2f} ms in the backlog, against {alone:.2f} ms alone and "
            f"{shared:.2f} ms with four threads writing at once, timed on a copy of the same database (PRAGMA "
            f"synchronous={level})")
    if ours >= 20:
        note += (". Missed: the writes queue for SQLite's one write lock" + (", each holding it through an fsync"
                 if level in ("FULL", "EXTRA") else "") + ", with four workers and the main loop on two cores (also "
                 "running the emulator). Next step: fewer store round trips per item (no re-read after each update; "
                 "fold a transition and its fields into one write), keeping the commits the write-ahead needs")
    return note


def _median_gap(runs: list[list[Any]], state_dir: Path) -> float:
    """The median time between one item's trip ending and the next item of the same account starting."""
    connection = sqlite3.connect(f"file:{state_dir / 'watchfolder.sqlite3'}?mode=ro", uri=True)
    account_of = dict(connection.execute("SELECT id, account FROM items"))
    connection.close()
    by_account: dict[str, list[tuple[float, float]]] = {}
    for item_id, _thread, start, end in sorted(runs, key=lambda run: run[2]):
        by_account.setdefault(account_of.get(item_id, "?"), []).append((start, end))
    gaps = [b[0] - a[1] for trips in by_account.values() for a, b in zip(trips, trips[1:], strict=False)]
    return statistics.median(gaps) if gaps else 0.0


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


def run_idle(ctx: Context) -> list[Section]:
    names = accounts(ctx)
    folder = ctx.work / "backlog"
    done_folders = [folder / "daemon" / "tiktok" / name / "done" for name in names]
    files = sum(1 for done in done_folders for _ in done.glob("*.mp4"))
    warmup, duration, poll = (0.2, 0.5, 1.0) if ctx.smoke else (5.0, 30.0, 5.0)
    results: dict[str, tuple[float, int]] = {}
    with EmulatorProcess(ctx.work / "idle" / "emulator", names) as emulator:
        for observer in ("inotify", "polling"):
            ctx.say(f"idle: {observer}, {duration:.0f} s")
            daemon = DaemonProcess(folder / "daemon", emulator, names,
                                   watch={"observer": observer, "poll_interval": poll, "settle_seconds": SETTLE}
                                   ).prepare(sign_in=False).start()   # idle: no call to TikTok; the tokens stay
            try:
                time.sleep(warmup)   # start-up (imports, the first scan of the inboxes) is not idling
                opens = FolderOpens(done_folders)
                before, start = sum(cpu_seconds(daemon.pid)), time.monotonic()
                time.sleep(duration)
                used, seconds = sum(cpu_seconds(daemon.pid)) - before, time.monotonic() - start
                results[observer] = (used / seconds, opens.count())
                opens.close()
            finally:
                daemon.stop()
    figures = []
    for observer, (share, opened) in results.items():
        goal = f"< 1 % of a core (polling every {poll:g} s)" if observer == "polling" else ""
        figures.append(Figure(f"idle CPU, {observer}, {files:,} files in done/",
                              f"{share * 100:.2f} % of a core ({share * 3600:.1f} CPU-s per hour)", goal,
                              verdict(share < 0.01) if goal else INFO,
                              "" if share < 0.01 else "Missed: the main loop passes four times a second; profile "
                              "one pass (cProfile of the main thread) for a query or listing that grows with "
                              "the number of items"))
        figures.append(Figure(f"done/ folders or files opened while idle, {observer}", f"{opened}",
                              "0" if observer == "polling" else "", verdict(opened == 0) if observer == "polling"
                              else INFO))
    body = [
        f"After the backlog, `watchfolder run` (no step timers) restarts on the same root and state: {files:,} "
        f"files and their sidecars in `done/`, {files:,} finished items in the store, empty inboxes. After "
        f"{warmup:g} s of start-up, the daemon's user + system CPU is read from `/proc/<pid>/stat` over "
        f"{duration:g} s, once with inotify and once with the polling observer at `poll_interval: {poll:g}`. "
        "An inotify watch on every `done/` folder counts each time any process opens the folder or a file in "
        "it (IN_OPEN): a poll that walked `done/` would open it every interval.",
    ]
    body.append("")
    body.append("`--only idle` runs the backlog first: it is what fills `done/`.")
    return [Section(5, "Idle cost with 10,000 files in done/", "python -m bench --only idle", figures, body)]
