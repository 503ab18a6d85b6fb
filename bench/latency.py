"""Benchmark 3: detection latency, from the rename into inbox/ to the init request at the emulator.

Goals: ``settle_seconds`` + under 0.5 s with inotify; ``settle_seconds`` + one ``poll_interval`` with
polling. Before each drop the benchmark waits a random fraction of the poll interval (seeded), so the
drops land at every phase of the polling cycle instead of always at the same one.
"""

from __future__ import annotations

import os
import random
import statistics
import time

from bench.report import Figure, Section, verdict
from bench.rig import Context, DaemonProcess, EmulatorProcess
from watchfolder.media import samples

SIZE = 1_000_000


def run(ctx: Context) -> list[Section]:
    settle, poll, count = (0.2, 0.5, 1) if ctx.smoke else (1.0, 5.0, 6)
    folder = ctx.work / "latency"
    staging = folder / "staging"
    staging.mkdir(parents=True)
    results: dict[str, list[tuple[float, float, float]]] = {}
    with EmulatorProcess(folder / "emulator", ["alice"]) as emulator:
        for number, observer in enumerate(("inotify", "polling")):
            daemon = DaemonProcess(folder / observer, emulator, ["alice"],
                                   watch={"observer": observer, "settle_seconds": settle, "poll_interval": poll},
                                   upload={"status_poll_seconds": 0.1}).prepare().start()
            rng = random.Random(f"latency-{observer}")
            try:
                for index in range(count):
                    ctx.say(f"latency: {observer}, drop {index + 1}/{count}")
                    name = f"clip-{observer}-{index}.mp4"
                    source = samples.write_mp4(staging / name, size=SIZE, seed=5000 + 100 * number + index)
                    # A random phase against the poll cycle (polling) or the main loop's 0.25 s tick (inotify).
                    time.sleep(rng.uniform(0, poll if observer == "polling" else 0.5))
                    dropped = time.time()
                    os.rename(source, daemon.inbox("alice") / name)
                    finished = daemon.wait_for("item_finished", 60, count=index + 1)
                    event = next(e for e in finished if e.get("item") == name)
                    queued = next(e for e in daemon.events("item_queued") if e.get("item") == name)
                    init = min(r["at"] for r in emulator.records()["requests"]
                               if r.get("publish_id") == event["publish_id"] and r["endpoint"].endswith("_init"))
                    results.setdefault(observer, []).append((init - dropped, queued["at"] - dropped,
                                                             init - queued["at"]))
            finally:
                daemon.stop()
    figures = []
    for observer, allowance, goal_text in (("inotify", 0.5, f"≤ {settle:g} + 0.5 s"),
                                           ("polling", poll, f"≤ {settle:g} + {poll:g} s")):
        latencies = [r[0] for r in results[observer]]
        worst = max(latencies)
        figures.append(Figure(f"{observer}: rename → init, median (worst) of {len(latencies)}",
                              f"{statistics.median(latencies):.2f} s ({worst:.2f} s)", goal_text,
                              verdict(worst <= settle + allowance), _note(observer, worst, settle, allowance)))
    body = [
        f"A fresh daemon per observer, `settle_seconds: {settle:g}`, `poll_interval: {poll:g}` (polling only); "
        f"{count} drops each of a {SIZE / 1e6:g} MB MP4, renamed into `inbox/` from a folder on the same "
        "filesystem (as a careful writer does), one at a time. The drop time is taken just before the rename; "
        "the init time is the emulator's record of the init answer (same machine clock). The goal is judged "
        "on the worst drop.",
        "",
        "| observer | drop | rename → init | rename → taken in (`item_queued`) | taken in → init |",
        "| --- | --- | --- | --- | --- |",
    ]
    for observer, rows in results.items():
        body += [f"| {observer} | {index + 1} | {total:.3f} s | {queued:.3f} s | {init:.3f} s |"
                 for index, (total, queued, init) in enumerate(rows)]
    body += ["", "Taken in → init covers the hash of the file, the scheduler handing it to a worker and the "
             "init request itself."]
    return [Section(3, "Detection latency: rename into inbox/ → init at the emulator", "python -m bench --only latency",
                    figures, body)]


def _note(observer: str, worst: float, settle: float, allowance: float) -> str:
    if observer == "inotify":
        if worst <= settle + allowance:
            return "inotify reports the rename at once; the rest is the main loop's next pass (it ticks every 0.25 s)"
        return ("over the allowance: the main loop is not woken by watcher events and passes every 0.25 s, so "
                "something else held it up; next step: look at the daemon's log around the slow drop")
    explained = ("a file renamed just after a poll is seen one interval later; then the main loop's next pass (up "
                 "to 0.25 s) and the settle window follow, so the design's worst case is settle_seconds + "
                 "poll_interval + 0.25 s and a few ms")
    if worst <= settle + allowance:
        return explained
    return (f"{explained}, past the goal by up to 0.25 s. Next step: wake the main loop when the watcher queues "
            "an event (rate-limited, so a long copy's stream of events does not spin it)")
