"""Benchmark 8: the status page with 10,000 items in the store: the bytes a browser gets and the server's time.

The store is filled directly (one transaction) as a daemon that has run for weeks would leave it, in two
shapes: 10,000 finished items, 200 of them in the last 24 h (the usual case), and 10,000 items queued in
one account's inbox (the worst case: every one is an open item the read model loads). ``GET /`` and
``GET /api/status`` are timed over HTTP on loopback against the metrics server, which reads the store
at each request.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import requests
import yaml

from bench.report import MET, MISSED, Figure, Section
from bench.rig import Context
from watchfolder.config import settings as config
from watchfolder.ops import metrics
from watchfolder.ops.health import HealthMonitor
from watchfolder.store.store import Store

GOAL_BYTES = 50 * 1024
GOAL_MS = 100.0
ITEMS = 10_000


def _fill(state_dir: Path, shape: str, count: int, now: float) -> None:
    store = Store(state_dir)
    try:
        rows = []
        for number in range(count):
            name = f"clip-{number:05d}.mp4"
            account = "alice" if number % 2 == 0 or shape == "queued" else "bob"
            if shape == "queued":
                rows.append((account, name, "video", "queued", "inbox", 5_000_000, now - 60, now - 60, None, None))
            else:
                age = 3600 * (1 + number % 200) if number < 200 else 86400 * (2 + number % 28)
                failed = number % 50 == 0
                rows.append((account, name, "video", "failed" if failed else "done", "failed" if failed else "done",
                             5_000_000, now - age - 120, now - age, "invalid_params" if failed else None,
                             "SEND_TO_USER_INBOX" if not failed else None))
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO items (account, name, kind, state, folder, size, detected_at, updated_at, error_code,"
                " status, moved) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)", rows)
            conn.execute("INSERT INTO events (item_id, state, at, detail)"
                         " SELECT id, state, updated_at, NULL FROM items")
    finally:
        store.close()


def _settings(work: Path) -> config.Settings:
    for folder in ("media", "state"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    document = {"root": str(work / "media"), "state_dir": str(work / "state"),
                "tiktok": {"client_key": "bench", "client_secret": "bench-secret"},
                "metrics": {"listen": "127.0.0.1:0"},
                "accounts": {"alice": {"mode": "inbox"}, "bob": {"mode": "inbox"}}}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return config.load(path, env={})


def _measure(url: str, rounds: int) -> tuple[int, float, float]:
    """(bytes of the body, median ms, worst ms) of GET url."""
    times, size = [], 0
    with requests.Session() as session:
        session.get(url, timeout=30)  # warm: the first read opens the database file
        for _ in range(rounds):
            started = time.perf_counter()
            answer = session.get(url, timeout=30)
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
            size = len(answer.content)
    return size, statistics.median(times) * 1000, max(times) * 1000


def run(ctx: Context) -> list[Section]:
    count = 500 if ctx.smoke else ITEMS
    rounds = 3 if ctx.smoke else 30
    now = time.time()
    rows: list[tuple[str, str, int, float, float]] = []
    for shape, label in (("finished", f"{count:,} finished, 200 in the last 24 h"),
                         ("queued", f"{count:,} queued in one inbox")):
        work = ctx.work / f"page-{shape}"
        settings = _settings(work)
        _fill(settings.state_dir, shape, count, now)
        ctx.say(f"page: {label}")
        server = metrics.MetricsServer(settings, HealthMonitor())
        try:
            base = f"http://127.0.0.1:{server.port}"
            for path in ("/", "/api/status"):
                size, median, worst = _measure(base + path, rounds)
                rows.append((label, path, size, median, worst))
        finally:
            server.close()
    page_rows = [row for row in rows if row[1] == "/"]
    biggest = max(row[2] for row in page_rows)
    slowest = max(row[3] for row in page_rows)
    figures = [
        Figure(f"status page bytes with {count:,} items (largest shape)", f"{biggest / 1024:.1f} KiB",
               f"< {GOAL_BYTES // 1024} KiB", MET if biggest < GOAL_BYTES else MISSED,
               "the queue is cut to its first 50 per account; /api/status has every item"),
        Figure(f"status page server time with {count:,} items (median, slowest shape)", f"{slowest:.0f} ms",
               f"< {GOAL_MS:g} ms", MET if slowest < GOAL_MS else MISSED,
               "the read model (report.collect) at each request, on a read-only connection"),
    ]
    body = [f"`GET` over HTTP on loopback, {rounds} rounds after one warm-up, against the metrics server alone "
            "(no daemon), the store filled in one transaction. Time is the client's, request sent to body read.", "",
            "| store | path | bytes | median | worst |", "| --- | --- | --- | --- | --- |"]
    body += [f"| {label} | `{path}` | {size:,} B | {median:.1f} ms | {worst:.1f} ms |"
             for label, path, size, median, worst in rows]
    return [Section(8, "Status page: bytes and server time with 10,000 items", "python -m bench --only page",
                    figures, body)]
