"""Benchmark 2: the daemon's peak RSS uploading a 200 MB and a 2 GB file. Goal: under 60 MB, flat in size.

Each size gets a fresh daemon, so its VmHWM (the kernel's peak RSS of the process) covers start-up and
that one upload. The files are sparse MP4s (valid boxes around a hole): nothing to write, and the
emulator's content checks are off; the bytes still travel the whole way and are hashed on both sides.
"""

from __future__ import annotations

import shutil

from bench.proc import Sampler, memory_kib
from bench.report import Figure, Section, verdict
from bench.rig import Context, EmulatorProcess
from bench.uploads import daemon_upload
from watchfolder.media import samples
from watchfolder.tiktok.chunks import DEFAULT_CHUNK

GOAL_MB = 60
FLAT_MB = 5   # "flat": ten times the bytes may not cost more than this much more memory


def run(ctx: Context) -> list[Section]:
    sizes = (6_000_000, 24_000_000) if ctx.smoke else (200_000_000, 2_000_000_000)
    folder = ctx.work / "memory"
    folder.mkdir(parents=True)
    peaks: dict[int, int] = {}
    rates: dict[int, float] = {}
    with EmulatorProcess(folder / "emulator", ["daemon"]) as emulator:
        emulator_sampler = Sampler(emulator.process.pid).start()  # type: ignore[union-attr]
        for size in sizes:
            ctx.say(f"memory: {size / 1e6:,.0f} MB")
            path = samples.write_sparse_mp4(folder / f"sparse-{size}.mp4", size)
            try:
                upload = daemon_upload(folder / f"daemon-{size}", emulator, emulator_sampler, path, "daemon",
                                       DEFAULT_CHUNK)
            finally:
                path.unlink(missing_ok=True)
            peaks[size], rates[size] = upload.peak_rss, upload.rate
        emulator_sampler.stop()
        emulator_rss = memory_kib(emulator.process.pid).get("VmHWM", 0) * 1024  # type: ignore[union-attr]
    shutil.rmtree(folder, ignore_errors=True)
    small, large = sizes
    growth = (peaks[large] - peaks[small]) / 2**20
    worst = max(peaks.values()) / 2**20
    figures = [
        Figure(f"peak RSS uploading {_size(small)}", f"{peaks[small] / 2**20:.1f} MiB", f"< {GOAL_MB} MB",
               verdict(peaks[small] / 2**20 < GOAL_MB)),
        Figure(f"peak RSS uploading {_size(large)}", f"{peaks[large] / 2**20:.1f} MiB", f"< {GOAL_MB} MB",
               verdict(worst < GOAL_MB)),
        Figure(f"growth for {large // small}× the bytes", f"{growth:+.1f} MiB", f"flat (< {FLAT_MB} MiB)",
               verdict(growth < FLAT_MB),
               "" if growth < FLAT_MB else "memory grows with the file: look for a buffer that is not reused"),
    ]
    body = [
        "A fresh `watchfolder run` per file (one account, inotify, `settle_seconds: 0.5`, default chunk size); "
        "the figure is `VmHWM` from `/proc/<pid>/status` read after the sidecar appears, so it covers start-up, "
        "the hash, every chunk and the move. RSS counts the daemon's own memory, not the page cache it reads "
        "through; a chunk passes through the process in 1 MiB blocks read into one reused buffer (hashed there "
        "when the hash is built while sending; without a hash, plain HTTP uses `socket.sendfile`), so no chunk is "
        "ever held whole.",
        "",
        "| file | peak RSS | upload rate |",
        "| --- | --- | --- |",
        *(f"| {_size(size)} sparse MP4 | {peaks[size] / 2**20:.1f} MiB | {rates[size]:.3f} GB/s |" for size in sizes),
        "",
        f"For scale: the emulator process peaked at {emulator_rss / 2**20:.0f} MiB over the same uploads.",
    ]
    return [Section(2, "Memory: peak RSS of the daemon by file size", "python -m bench --only memory", figures,
                    body)]


def _size(size: int) -> str:
    return f"{size / 1e9:g} GB" if size >= 1e9 else f"{size / 1e6:,.0f} MB"
