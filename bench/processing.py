"""Benchmark 10: 20 videos through one account while TikTok takes 30 s to process each.

The emulator keeps TikTok's per-token rate limits (6 inits, 30 status calls a minute) and processes each
video for 30 s; its pending-drafts cap is raised (0: none), and so is the daemon's. The daemon runs with
its default upload settings (``status_poll_seconds`` 10, default workers) and TikTok's rate limits. Its
20 videos are dropped into the inbox at once; the figure is the time from the drop to the 20th sidecar in
``done/``, against what one video at a time would take (20 × 30 s of processing alone) and the floor that
TikTok's init rate sets.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from bench.report import INFO, Figure, Section, verdict
from bench.rig import Context, DaemonProcess, EmulatorProcess
from watchfolder.config.settings import UploadSettings, WatchSettings
from watchfolder.media import samples

GOAL = 300.0
INIT_PER_MINUTE, STATUS_PER_MINUTE, CREATOR_INFO_PER_MINUTE = 6, 30, 20   # TikTok's documented limits
ACCOUNT = "creator"
SIZE = 65536


def drop(inbox: Path, staging: Path, count: int) -> float:
    """Write ``count`` distinct small MP4s beside the inbox, then rename them all in; return the time of the
    first rename (epoch seconds)."""
    staging.mkdir(parents=True, exist_ok=True)
    inbox.mkdir(parents=True, exist_ok=True)
    made = [samples.write_mp4(staging / f"clip-{index:02d}.mp4", size=SIZE, seed=1000 + index)
            for index in range(count)]
    os.sync()
    first = time.time()
    for path in made:
        path.rename(inbox / path.name)
    return first


def run(ctx: Context) -> list[Section]:
    count, seconds = (3, 2.0) if ctx.smoke else (20, 30.0)
    poll = 1.0 if ctx.smoke else UploadSettings().status_poll_seconds
    settle = 1.0 if ctx.smoke else WatchSettings().settle_seconds
    folder = ctx.work / "processing"
    limits = {"init_per_minute": INIT_PER_MINUTE, "status_per_minute": STATUS_PER_MINUTE,
              "creator_info_per_minute": CREATOR_INFO_PER_MINUTE}
    with EmulatorProcess(folder / "emulator", [ACCOUNT],
                         settings={**limits, "processing_seconds": seconds, "pending_share_cap": 0}) as emulator:
        daemon = DaemonProcess(folder / "daemon", emulator, [ACCOUNT],
                               watch={"observer": "inotify", "settle_seconds": settle},
                               upload={"status_poll_seconds": poll}, tiktok=limits).prepare().start()
        try:
            done = daemon.root / ACCOUNT / "done"
            start = drop(daemon.inbox(ACCOUNT), folder / "staging", count)
            ctx.say(f"processing: {count} videos dropped, {seconds:g} s of processing each")
            deadline = time.monotonic() + (60 if ctx.smoke else 1200)
            while len(list(done.glob("*.mp4.json"))) < count:
                if daemon.process is not None and daemon.process.poll() is not None:
                    raise RuntimeError(f"the daemon exited; see {daemon.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not all {count} videos were done in time; see {daemon.log_path}")
                time.sleep(0.2)
            elapsed = max(path.stat().st_mtime for path in done.glob("*.mp4.json")) - start
            records = emulator.records()
        finally:
            daemon.stop()
    return [_section(records, count, seconds, poll, settle, elapsed)]


def _section(records: dict[str, Any], count: int, seconds: float, poll: float, settle: float,
             elapsed: float) -> Section:
    requests = records["requests"]
    inits = sorted(r["at"] for r in requests if r["endpoint"] == "inbox_init")
    statuses = [r for r in requests if r["endpoint"] == "status"]
    refused = [r for r in requests if r["http_status"] == 429]
    # A video is in TikTok's processing from its last chunk's answer for `seconds`.
    uploaded: dict[str, float] = {}
    for r in requests:
        if r["endpoint"] == "upload" and r["http_status"] in (200, 201, 206) and r.get("publish_id"):
            uploaded[r["publish_id"]] = max(uploaded.get(r["publish_id"], 0.0), r["at"])
    spans = [(end, end + seconds) for end in uploaded.values()]
    at_once = max((sum(1 for a, b in spans if a <= moment < b) for moment, _ in spans), default=0)
    serial = count * seconds
    floor = settle + (math.ceil(count / INIT_PER_MINUTE) - 1) * 60 + seconds
    spread = inits[-1] - inits[0] if inits else 0.0
    figures = [
        Figure(f"{count} videos, {seconds:g} s of processing each, one account: the first drop to the last "
               "sidecar", f"{elapsed:.0f} s ({elapsed / 60:.1f} min)", f"≤ {GOAL / 60:g} min",
               verdict(elapsed <= GOAL),
               f"one video at a time would take at least {serial:.0f} s ({count} × {seconds:g} s of processing "
               f"alone); TikTok's {INIT_PER_MINUTE} inits a minute set a floor of about {floor:.0f} s "
               f"(settle_seconds = {settle:g}, then the last init no earlier than {floor - seconds - settle:.0f} s "
               f"after the first, then {seconds:g} s of processing)" + _missed(elapsed, spread, at_once)),
        Figure("videos in TikTok's processing at once (most)", f"{at_once}", verdict=INFO,
               note="from the emulator's records: each video counts from its last chunk's answer for the processing "
                    "time"),
        Figure("the first to the last init", f"{spread:.0f} s", verdict=INFO,
               note=f"{len(inits)} inits; {len(statuses)} status calls; {len(refused)} requests refused with 429 "
                    "(the daemon's pacing should keep this at 0)"),
    ]
    body = [
        f"One account, {count} distinct {SIZE:,}-byte MP4s written beside the inbox and renamed into it at once "
        f"while `watchfolder run` is idle (inotify, settle_seconds = {settle:g}). The emulator processes each "
        f"upload for {seconds:g} s and keeps "
        f"TikTok's per-token rate limits ({INIT_PER_MINUTE} inits, {STATUS_PER_MINUTE} status calls and "
        f"{CREATOR_INFO_PER_MINUTE} creator_info calls a minute), with its pending-drafts cap raised (none); the "
        "daemon is configured with the same limits, `drafts_per_day: 0` (no cap) and its default upload "
        f"settings (`status_poll_seconds: {poll:g}`, `upload.workers: {UploadSettings().workers}`, "
        f"`upload.per_account: {UploadSettings().per_account}`). The time runs from the first rename into the "
        "inbox to the newest sidecar's mtime in `done/`.",
    ]
    return Section(10, "Processing: 20 videos with 30 s of TikTok processing each, one account",
                   "python -m bench --only processing", figures, body)


def _missed(elapsed: float, spread: float, at_once: int) -> str:
    if elapsed <= GOAL:
        return ""
    return (f". Missed: the inits were spread over {spread:.0f} s and at most {at_once} videos were in processing "
            "at once; if that is 1, the account's upload slot waits for TikTok's processing (the lanes are not "
            "separate); otherwise look at the init pacing and the status poller's interval")
