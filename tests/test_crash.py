"""Crash-safe and exactly-once: the real ``watchfolder run``, killed with SIGKILL again and again.

The daemon runs as a subprocess against the emulator (in this process, with faults switched on and a
short but non-zero processing time, so kills land while TikTok "processes"). Each round waits for a
chosen moment (right after an init, in the middle of a chunk, after the last chunk, while polling,
while a file moves, or after a random delay), kills the daemon with SIGKILL and starts it again.
At the end every file must be in done/ exactly once with its sidecar, TikTok must hold at most one
completed post per file, no chunk may have been sent again past an acknowledged range except the
one in flight at a kill, and the state database must pass SQLite's integrity check.

``WATCHFOLDER_CRASH_SEED`` picks another random schedule (the seed is printed when the test fails).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig
from watchfolder.emulator.clock import OffsetClock
from watchfolder.media import samples

WATCHFOLDER = Path(sys.executable).with_name("watchfolder")
ACCOUNTS = ("alice", "bob")
CHUNK = 5_242_880
BIG_SIZES = (11_000_000, 12_500_000, 14_000_000, 15_500_000, 16_000_000)  # two or three chunks each
SMALL_FILES = 15
MIN_KILLS = int(os.environ.get("WATCHFOLDER_CRASH_KILLS", "32"))
SLOW_PUT_SECONDS = 0.8     # a "slow" chunk PUT holds the server this long before it reads the body
MOMENT_TIMEOUT = 3.0       # a moment that does not come in this time becomes a plain kill
FINAL_TIMEOUT = float(os.environ.get("WATCHFOLDER_CRASH_FINAL", "90"))
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Kill:
    moment: str
    at: float        # the emulator's clock once the process was gone


@dataclass
class Scene:
    """The emulator, the config, the files to drop and the record of every kill."""

    emulator: Any
    rig: Rig
    rng: random.Random
    sources: dict[str, tuple[str, Path]]          # name -> (account, prepared file outside the inbox)
    digests: dict[str, str] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    seed: int = 0

    def start(self) -> None:
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(WATCHFOLDER), "run", "-c", str(self.rig.config_path)],
                env={**os.environ, **self.rig.env}, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )

    def readies(self) -> int:
        """How many times the log says a daemon became ready (with its signal handlers in place)."""
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace").count('"daemon_ready"')

    def kill(self, moment: str) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills.append(Kill(moment, self.emulator.clock.now()))

    def drop(self, count: int) -> None:
        """Move the next ``count`` prepared files into their inboxes (rename: atomic, as careful writers do)."""
        waiting = [name for name, (_, path) in self.sources.items() if path.exists()]
        for name in waiting[:count]:
            account, path = self.sources[name]
            path.rename(self.rig.folder(account, "inbox") / name)

    def records(self, endpoint: str, status: int | None = None) -> list[Any]:
        return [r for r in self.emulator.records.requests
                if r.endpoint == endpoint and (status is None or r.http_status == status)]

    def done_names(self) -> set[str]:
        return {entry for account in ACCOUNTS for entry in os.listdir(self.rig.folder(account, "done"))}


def _wait(predicate: Callable[[], bool], timeout: float = MOMENT_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


# ---- the moments at which a kill lands -----------------------------------------------------------

def after_init(scene: Scene) -> str:
    before = len(scene.records("inbox_init", 200))
    return "after init" if _wait(lambda: len(scene.records("inbox_init", 200)) > before) else "timeout"


def mid_chunk(scene: Scene) -> str:
    scene.emulator.faults.fail_next("upload", kind="slow", delay=SLOW_PUT_SECONDS)
    if not _wait(lambda: "upload" not in scene.emulator.faults.pending()):
        scene.emulator.faults.clear()
        return "timeout"
    time.sleep(scene.rng.uniform(0.0, SLOW_PUT_SECONDS / 2))
    return "mid-chunk"


def after_last_chunk(scene: Scene) -> str:
    before = len(scene.records("upload", 201))
    return "after the last chunk" if _wait(lambda: len(scene.records("upload", 201)) > before) else "timeout"


def while_polling(scene: Scene) -> str:
    before = len(scene.records("status"))
    return "while polling" if _wait(lambda: len(scene.records("status")) > before) else "timeout"


def during_move(scene: Scene) -> str:
    before = scene.done_names()
    return "during the move" if _wait(lambda: scene.done_names() - before != set()) else "timeout"


def random_delay(scene: Scene) -> str:
    time.sleep(scene.rng.uniform(0.05, 1.5))
    return "random"


MOMENTS = (after_init, mid_chunk, after_last_chunk, while_polling, during_move, random_delay)


def plan_faults(scene: Scene) -> None:
    """Switch some faults on for this round: failed and dropped calls, and inits whose answer is lost."""
    faults = scene.emulator.faults
    for endpoint, kind in (("upload", "5xx"), ("upload", "drop"), ("status", "5xx"), ("status", "drop"),
                           ("inbox_init", "5xx"), ("inbox_init", "drop"), ("inbox_init", "drop_after")):
        if scene.rng.random() < 0.15:
            faults.fail_next(endpoint, kind=kind)


# ---- the checks ----------------------------------------------------------------------------------

def chunk_resends(requests: list[Any], kills: list[Kill], excused: list[str] | None = None) -> list[str]:
    """Return the chunk PUTs sent again past a range TikTok had acknowledged that no kill explains
    (and add the ones a kill explains to ``excused``).

    Per upload, a PUT whose first byte lies below what the server had accepted is a resend. It is
    allowed only for the most recently accepted range (the chunk in flight when the daemon died), and
    only after a kill that came after the range before it was accepted; each kill excuses at most one
    resend per upload. A resend that met a fault (a 5xx or a dropped answer: the server said nothing
    about the range) may be sent again under the same excuse; one answered 416 may not.
    """
    problems = []
    by_upload: dict[str, list[Any]] = collections.defaultdict(list)
    for record in requests:
        if record.endpoint == "upload" and record.publish_id and record.content_range:
            by_upload[record.publish_id].append(record)
    for publish_id, puts in by_upload.items():
        accepted: list[tuple[int, int, float]] = []
        used: set[int] = set()
        faulted_resend: tuple[int, int] | None = None   # an excused resend that met a fault, not yet answered
        for put in puts:
            first, last, _ = (int(g) for g in _RANGE.fullmatch(put.content_range).groups())
            acked = accepted[-1][1] + 1 if accepted else 0
            if first < acked and faulted_resend == (first, last):
                pass   # the same resend again: the fault told the daemon nothing about the range
            elif first < acked:
                since = accepted[-2][2] if len(accepted) > 1 else 0.0
                excuse = next((i for i, kill in enumerate(kills) if since < kill.at < put.at and i not in used), None)
                if (first, last) != accepted[-1][:2] or excuse is None:
                    problems.append(f"{publish_id}: bytes {first}-{last} sent again at {put.at:.3f} "
                                    f"(acknowledged up to {acked}, kills {[round(k.at, 3) for k in kills]})")
                else:
                    used.add(excuse)
                    if excused is not None:
                        excused.append(f"{publish_id}: bytes {first}-{last}")
            answered = put.http_status is not None and 0 < put.http_status < 500
            faulted_resend = (first, last) if first < acked and not answered else None
            if put.http_status in (201, 206):
                accepted.append((first, last, put.at))
    return problems


def sidecars(scene: Scene) -> dict[str, dict[str, Any]]:
    found = {}
    for account in ACCOUNTS:
        done = scene.rig.folder(account, "done")
        for entry in os.listdir(done):
            if entry.endswith(".json"):
                found[entry[:-5]] = json.loads((done / entry).read_text(encoding="utf-8"))
    return found


def check_outcome(scene: Scene) -> None:
    rig, emulator = scene.rig, scene.emulator
    for account in ACCOUNTS:
        for folder in ("inbox", "processing", "failed"):
            assert os.listdir(rig.folder(account, folder)) == [], f"{account}/{folder}/ is not empty"
    # Every file in done/ exactly once, with its sidecar, and nothing else there (no half-written temp files).
    found: collections.Counter[str] = collections.Counter()
    cars = sidecars(scene)
    for account in ACCOUNTS:
        done = rig.folder(account, "done")
        for entry in os.listdir(done):
            if entry.endswith(".json"):
                continue
            digest = sha256(done / entry)
            found[digest] += 1
            assert entry in cars, f"{account}/done/{entry} has no sidecar"
            assert cars[entry]["result"] == "done" and cars[entry]["sha256"] == digest
            assert cars[entry]["account"] == account
    assert sorted(found.values()) == [1] * len(scene.digests)
    assert set(found) == set(scene.digests.values())
    assert len(cars) == len(scene.digests)
    # TikTok: exactly one completed post per file; every other task is an orphan the sidecars admit to.
    for name, digest in scene.digests.items():
        assert emulator.records.completed(digest) == 1, f"{name}: {emulator.records.completed(digest)} posts"
    publishes = emulator.records.publishes
    unfinished = [p for p in publishes if p.status not in ("SEND_TO_USER_INBOX", "PUBLISH_COMPLETE", "FAILED")]
    orphans = [orphan for car in cars.values() for orphan in car.get("orphans", [])]
    assert len(unfinished) <= len(orphans), (unfinished, orphans)
    completed_ids = {p.publish_id for p in publishes if p.status in ("SEND_TO_USER_INBOX", "PUBLISH_COMPLETE")}
    assert not [o for o in orphans if o.get("publish_id") in completed_ids]
    assert chunk_resends(emulator.records.requests, scene.kills) == []
    with sqlite3.connect(rig.state_dir / "watchfolder.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        unfinished_rows = conn.execute("SELECT id, name, state, moved FROM items WHERE moved = 0").fetchall()
    assert unfinished_rows == []


def describe_items(scene: Scene) -> list[str]:
    """The state database's view of every item, for the failure report."""
    path = scene.rig.state_dir / "watchfolder.sqlite3"
    if not path.exists():
        return ["no state database"]
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, account, name, state, folder, uploaded_bytes, size, attempts, moved, "
                            "wait_reason, detail, publish_id FROM items ORDER BY id").fetchall()
    return [" | ".join(str(value) for value in row) for row in rows]


# ---- the checker itself ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Put:
    """Just what chunk_resends reads of a request record."""

    content_range: str
    http_status: int
    at: float
    publish_id: str = "p1"
    endpoint: str = "upload"


def test_the_resend_check_excuses_only_the_chunk_in_flight_at_a_kill() -> None:
    """The checker passes a resend of the last acknowledged chunk after a kill, and nothing else."""
    first, second, third = "bytes 0-9/30", "bytes 10-19/30", "bytes 20-29/30"
    in_flight = [Put(first, 206, 1.0), Put(second, 206, 2.0), Put(second, 416, 4.0), Put(third, 201, 5.0)]
    assert chunk_resends(in_flight, [Kill("mid-chunk", 3.0)]) == []
    assert len(chunk_resends(in_flight, [])) == 1                              # no kill explains it
    assert len(chunk_resends(in_flight, [Kill("random", 4.5)])) == 1           # the kill came after it
    older = [Put(first, 206, 1.0), Put(second, 206, 2.0), Put(first, 416, 4.0)]
    assert len(chunk_resends(older, [Kill("random", 3.0)])) == 1               # not the chunk in flight
    twice = [Put(first, 206, 1.0), Put(second, 206, 2.0), Put(second, 416, 4.0), Put(second, 416, 5.0)]
    assert len(chunk_resends(twice, [Kill("random", 3.0)])) == 1               # one kill excuses one resend
    faulted = [Put(first, 206, 1.0), Put(second, 206, 2.0), Put(second, 500, 4.0), Put(second, 416, 5.0)]
    assert chunk_resends(faulted, [Kill("random", 3.0)]) == []                 # a fault said nothing: send again
    after_416 = [*faulted, Put(second, 416, 6.0)]
    assert len(chunk_resends(after_416, [Kill("random", 3.0)])) == 1           # a 416 did say: no third send
    refused = [Put(first, 500, 1.0), Put(first, 206, 2.0), Put(second, 201, 3.0)]
    assert chunk_resends(refused, []) == []                                    # a refused chunk was never taken


# ---- the test ------------------------------------------------------------------------------------

@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    seed = int(os.environ.get("WATCHFOLDER_CRASH_SEED", "20261126"))
    with running_emulator(clock=OffsetClock(), processing_seconds=1.0, pending_share_cap=0, init_per_minute=0,
                          status_per_minute=0, creator_info_per_minute=0) as emulator:
        rig = Rig(tmp_path / "rig", emulator, accounts={name: {"mode": "inbox"} for name in ACCOUNTS},
                  overrides={"watch.settle_seconds": 0.2, "upload.chunk_size": CHUNK, "upload.max_attempts": 1000,
                             "tiktok.timeout_seconds": 10})
        for account in ACCOUNTS:
            for folder in ("inbox", "processing", "done", "failed"):
                rig.folder(account, folder).mkdir(parents=True, exist_ok=True)
        staging = tmp_path / "staging"
        staging.mkdir()
        sources: dict[str, tuple[str, Path]] = {}
        sizes = list(BIG_SIZES) + [random.Random(seed + i).randrange(100_000, 400_000) for i in range(SMALL_FILES)]
        random.Random(seed).shuffle(sizes)
        for index, size in enumerate(sizes):
            name = f"clip{index:02d}.mp4"
            path = samples.write_mp4(staging / name, size=size, seed=seed + index)
            sources[name] = (ACCOUNTS[index % len(ACCOUNTS)], path)
        result = Scene(emulator, rig, random.Random(seed), sources,
                       digests={name: sha256(path) for name, (_, path) in sources.items()},
                       log_path=tmp_path / "daemon.log", seed=seed)
        try:
            yield result
        finally:
            if result.process is not None and result.process.poll() is None:
                result.process.kill()
                result.process.wait(timeout=10)


def test_kill_9_at_any_moment_loses_nothing_and_posts_nothing_twice(scene: Scene) -> None:
    """SIGKILL at least 32 times at varied moments, restart each time: every file ends in done/ once."""
    started = time.monotonic()
    scene.drop(4)
    # Every moment comes at least twice (one that finds nothing to wait for is tried again later), then at random.
    wanted = [moment for moment in MOMENTS[:-1] for _ in range(2)]
    scene.rng.shuffle(wanted)
    try:
        while len(scene.kills) < MIN_KILLS:
            plan_faults(scene)
            scene.start()
            moment = wanted.pop(0) if wanted else scene.rng.choice(MOMENTS)
            what = moment(scene)
            scene.kill(what if what != "timeout" else f"{moment.__name__} (timed out)")
            if what == "timeout":
                wanted.append(moment)
            if what == "mid-chunk":
                time.sleep(SLOW_PUT_SECONDS)   # let the server finish with the dead connection's PUT
            if len(scene.kills) % 3 == 0:
                scene.drop(2)   # more files arrive while the kills go on, some while the daemon is down
        scene.drop(len(scene.sources))
        scene.emulator.faults.clear()
        readies = scene.readies()
        scene.start()
        assert _wait(lambda: scene.readies() > readies, 30), "the daemon did not become ready"
        expected = len(scene.sources)
        ok = _wait(lambda: sum(1 for n in scene.done_names() if n.endswith(".json")) == expected, FINAL_TIMEOUT)
        assert scene.process is not None
        scene.process.send_signal(signal.SIGTERM)
        assert scene.process.wait(timeout=30) == 0
        assert ok, f"not every file reached done/ in {FINAL_TIMEOUT} s"
        moments = collections.Counter(kill.moment for kill in scene.kills)
        for wanted in ("after init", "mid-chunk", "after the last chunk", "while polling", "during the move"):
            assert moments[wanted] >= 1, f"no kill landed {wanted}: {dict(moments)}"
        check_outcome(scene)
    except BaseException:
        assert scene.log_path is not None
        tail = scene.log_path.read_text(errors="replace").splitlines()[-60:]
        print(f"seed {scene.seed}; kills: {[(k.moment, round(k.at, 3)) for k in scene.kills]}")
        print("\n".join(tail))
        print("\n".join(describe_items(scene)))
        raise
    finally:
        excused: list[str] = []
        chunk_resends(scene.emulator.records.requests, scene.kills, excused)
        orphans = sum(len(car.get("orphans", [])) for car in sidecars(scene).values())
        print(f"crash test: {len(scene.kills)} kills in {time.monotonic() - started:.1f} s; "
              f"{dict(collections.Counter(k.moment for k in scene.kills))}; {len(excused)} chunks in flight "
              f"at a kill sent again; {orphans} orphaned inits")
