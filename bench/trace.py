"""Step timers for the backlog benchmark: where a worker's time per file goes.

``python -m bench.trace OUT.json run -c CONFIG`` is ``watchfolder run -c CONFIG`` with a wall-clock timer
around each step named in STEPS. When the daemon exits it writes OUT.json: per step, the number of calls,
the time inside it (inclusive) and the time inside it but not inside another timed step (self), summed
over threads; the start and end of every ``Pipeline.run`` (one item's trip) with its item id; and the time
of every durable store transaction (``Store.transaction(durable=True)``: its commit waits for an fsync).

The timers are wrappers set on the classes and modules before the daemon starts; the code itself is
unchanged. Each costs about a microsecond per call, a few dozen calls per file.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (step name, module, attribute): "Class.method" or a module-level function.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("worker", "watchfolder.daemon.pipeline", "Pipeline.run"),
    ("prepare", "watchfolder.daemon.pipeline", "Pipeline._prepare"),
    ("hash", "watchfolder.daemon.itemfile", "ItemFile.sha256"),
    ("http_api", "watchfolder.tiktok.client", "TikTokClient._call"),
    ("http_chunk", "watchfolder.tiktok.upload", "ChunkUploader.put_chunk"),
    ("tokens", "watchfolder.tiktok.tokens", "TokenManager.access_token"),
    ("media_check", "watchfolder.media.probe", "probe"),
    ("settings_lookup", "watchfolder.intake.entries", "settings_for"),
    ("moves", "watchfolder.daemon.outbox", "move_item"),
    ("sidecar", "watchfolder.daemon.outbox", "write_sidecar"),
    ("finish", "watchfolder.daemon.finish", "finish"),
    ("intake", "watchfolder.intake.intake", "Intake.step"),
    ("schedule", "watchfolder.daemon.scheduler", "Scheduler.step"),
    *(("store_write", "watchfolder.store.store", f"Store.{name}") for name in (
        "add_items", "apply", "update", "note", "set_account_state", "set_runtime", "ledger_add")),
    *(("store_read", "watchfolder.store.store", f"Store.{name}") for name in (
        "get", "find_open", "items", "next_due", "same_key", "history", "account_state", "runtime",
        "ledger_times")),
)

_totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # calls, inclusive, self
_runs: list[tuple[int, str, float, float]] = []
_durable: list[float] = []
_guard = threading.Lock()
_local = threading.local()


def _timed(step: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        frame = [0.0]  # time spent in timed steps called from this one
        stack.append(frame)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            stack.pop()
            if stack:
                stack[-1][0] += elapsed
            with _guard:
                total = _totals[step]
                total[0] += 1
                total[1] += elapsed
                total[2] += elapsed - frame[0]
                if step == "worker":
                    _runs.append((int(args[1]), threading.current_thread().name, time.time() - elapsed, time.time()))

    return wrapper


def _count_durable(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("durable"):
            with _guard:
                _durable.append(time.time())
        return function(*args, **kwargs)

    return wrapper


def install() -> None:
    """Wrap every step in STEPS (raise AttributeError if the code no longer has one: update STEPS), and count
    the durable transactions."""
    store: Any = importlib.import_module("watchfolder.store.store").Store
    store.transaction = _count_durable(store.transaction)
    for step, module_name, attribute in STEPS:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, _timed(step, getattr(owner, name)))


def write(out: Path) -> None:
    with _guard:
        steps = {step: {"calls": int(v[0]), "inclusive": v[1], "self": v[2]} for step, v in _totals.items()}
        document = {"steps": steps, "runs": list(_runs), "durable": list(_durable)}
    out.write_text(json.dumps(document), encoding="utf-8")


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    install()
    atexit.register(write, out)
    from watchfolder import cli

    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
