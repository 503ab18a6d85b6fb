"""Benchmark 7: the media probe's cost per file, in time and in bytes read, whatever the file's size.

Every video taken in is probed once before anything is sent (``media.probe``): its headers are read
through a budget, so a 2 GB file with its ``moov`` at the end costs a seek and a few kilobytes.
"""

from __future__ import annotations

import statistics
import struct
import time
from pathlib import Path

from bench.report import MET, MISSED, Figure, Section
from bench.rig import Context
from tests import media_headers
from watchfolder.media import probe as media
from watchfolder.media import samples

GOAL_MS = 5.0          # per file, median: far below the hash of even a small file
GOAL_BYTES = 64 * 1024  # per file, at most


class _Counting:
    """A binary file object that counts what is read through it."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.read_bytes = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.read_bytes += len(data)
        return data

    def close(self) -> None:
        self.f.close()


def _moov_last(path: Path, size: int) -> Path:
    head = media_headers.ftyp()
    whole = media_headers.mp4(audio=media_headers.mp4a())
    moov = whole[len(head):whole.index(b"mdat") - 4]
    mdat_len = size - len(head) - len(moov)
    with open(path, "wb") as f:
        f.write(head + struct.pack(">I4s", mdat_len, b"mdat"))
        f.seek(len(head) + mdat_len)
        f.write(moov)
    return path


def _files(work: Path, smoke: bool) -> dict[str, Path]:
    big = 2_000_000 if smoke else 2_000_000_000
    made = {
        "MP4, moov first (samples.write_mp4)": samples.write_mp4(work / "small.mp4"),
        "WebM (samples.write_webm)": samples.write_webm(work / "small.webm"),
        f"MP4 {big / 1e9:g} GB sparse, moov first": samples.write_sparse_mp4(work / "big_first.mp4", big),
        f"MP4 {big / 1e9:g} GB sparse, moov at the end": _moov_last(work / "big_last.mp4", big),
    }
    for name, (make, _) in media_headers.FIXTURE_SPECS.items():
        path = work / name
        path.write_bytes(make())
        made[f"fixture {name}"] = path
    return made


def run(ctx: Context) -> list[Section]:
    work = ctx.work / "probe"
    work.mkdir(parents=True, exist_ok=True)
    rounds = 3 if ctx.smoke else 200
    rows = []
    for label, path in _files(work, ctx.smoke).items():
        times = []
        read = 0
        for _ in range(rounds):
            counted = _Counting(path)
            started = time.perf_counter()
            try:
                media.probe(counted)  # type: ignore[arg-type]
            finally:
                counted.close()
            times.append(time.perf_counter() - started)
            read = counted.read_bytes
        rows.append((label, path.stat().st_size, statistics.median(times) * 1000, max(times) * 1000, read))
    for path in work.iterdir():
        path.unlink()
    worst_median = max(row[2] for row in rows)
    most_read = max(row[4] for row in rows)
    figures = [
        Figure("probe time per file (median, worst file)", f"{worst_median:.2f} ms", f"≤ {GOAL_MS:g} ms",
               MET if worst_median <= GOAL_MS else MISSED,
               "headers only: the box walk seeks past mdat"),
        Figure("bytes read per file (most)", f"{most_read:,} B", f"≤ {GOAL_BYTES:,} B",
               MET if most_read <= GOAL_BYTES else MISSED, "the same for a 2 GB file as for a 1 KB one"),
    ]
    body = [f"`media.probe` over one open file object, {rounds} rounds per file, on this machine's page cache "
            "(the sparse files' holes cost nothing to read, as on a warm NAS). Bytes are counted on the file "
            "object the probe reads through.", "",
            "| file | size | median | worst | bytes read |", "| --- | --- | --- | --- | --- |"]
    body += [f"| {label} | {size:,} B | {median:.3f} ms | {worst:.3f} ms | {read:,} B |"
             for label, size, median, worst, read in rows]
    return [Section(7, "Media probe: time and bytes read per file", "python -m bench --only probe", figures, body)]
