"""The watcher on real folders with real inotify and polling observers: which names reach the queue, and how
it survives inboxes that are missing, vanish, get replaced, and observers that die."""

from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver

from watchfolder.fsinfo import Mount
from watchfolder.intake.watcher import Watcher, WatchEvent, make_observer

POLL = 0.1           # seconds between polls in these tests
WAIT = 3.0           # how long to wait for an expected event before failing
METHODS = ["inotify", "polling"]


class Harness:
    """A watcher on tmp_path/alice/inbox, its queue and its captured log lines."""

    def __init__(self, root: Path, method: str, events: queue.Queue[WatchEvent] | None = None,
                 **options: Any) -> None:
        self.inbox = root / "alice" / "inbox"
        self.events: queue.Queue[WatchEvent] = events if events is not None else queue.Queue()
        self.logs = LogCapture()
        # Its own wrapper class: whatever level the suite configured globally, every line is captured.
        log = structlog.wrap_logger(structlog.ReturnLogger(), processors=[self.logs],
                                    wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        options.setdefault("poll_interval", POLL)
        self.watcher = Watcher({"alice": self.inbox}, self.events, observer=method, log=log, **options)

    def names_until(self, name: str, timeout: float = WAIT) -> list[str]:
        """Collect queued names until ``name`` arrives, then a little longer for stragglers; fail if it never does."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(self.events.get(timeout=0.05).name)
            except queue.Empty:
                continue
            if seen[-1] == name:
                seen += self.drain(settle=2 * POLL)
                return seen
        raise AssertionError(f"no event for {name!r} within {timeout} s; got {seen}")

    def drain(self, settle: float = 0.0) -> list[str]:
        if settle:
            time.sleep(settle)
        names = []
        while True:
            try:
                names.append(self.events.get_nowait().name)
            except queue.Empty:
                return names

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs.entries if entry["event"] == event]

    def health(self) -> Any:
        (only,) = self.watcher.health()
        return only


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def harness(tmp_path: Path, method: str) -> Iterator[Harness]:
    h = Harness(tmp_path, method)
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    yield h
    h.watcher.stop()


def wait_until_watching(h: Harness) -> None:
    """A polling observer's first snapshot is its baseline: make sure it exists before writing."""
    (h.inbox / "ready.mp4").write_bytes(b"x")
    h.names_until("ready.mp4")


# ---- which names arrive ---------------------------------------------------------------------------

def test_created_file_is_reported(harness: Harness) -> None:
    (harness.inbox / "clip.mp4").write_bytes(b"video")
    assert "clip.mp4" in harness.names_until("clip.mp4")


def test_rename_from_a_temp_name_reports_the_final_name(harness: Harness) -> None:
    wait_until_watching(harness)
    (harness.inbox / "clip.mp4.part").write_bytes(b"half")
    time.sleep(2 * POLL)  # let a polling snapshot see the temp name, so the rename is a move for it too
    with open(harness.inbox / "clip.mp4.part", "ab") as handle:
        handle.write(b" and the rest")
    os.rename(harness.inbox / "clip.mp4.part", harness.inbox / "clip.mp4")
    names = harness.names_until("clip.mp4")
    assert "clip.mp4.part" not in names


def test_rename_inside_the_inbox_reports_both_names(harness: Harness) -> None:
    (harness.inbox / "draft.mp4").write_bytes(b"video")
    harness.names_until("draft.mp4")
    os.rename(harness.inbox / "draft.mp4", harness.inbox / "final.mp4")
    assert {"draft.mp4", "final.mp4"} <= set(harness.names_until("final.mp4"))


def test_undecodable_name_arrives_as_fsdecode_gives_it(harness: Harness) -> None:
    raw = os.fsencode(str(harness.inbox)) + b"/clip\xff.mp4"
    with open(raw, "wb") as handle:
        handle.write(b"video")
    name = os.fsdecode(b"clip\xff.mp4")
    harness.names_until(name)
    assert (harness.inbox / name).exists()


def test_file_moved_in_from_outside_is_reported(harness: Harness, tmp_path: Path) -> None:
    outside = tmp_path / "downloads"
    outside.mkdir()
    (outside / "clip.mov").write_bytes(b"video")
    wait_until_watching(harness)
    os.rename(outside / "clip.mov", harness.inbox / "clip.mov")
    harness.names_until("clip.mov")


def test_file_inside_a_photo_folder_reports_the_folder(harness: Harness) -> None:
    (harness.inbox / "trip").mkdir()
    harness.names_until("trip")
    (harness.inbox / "trip" / "1.jpg").write_bytes(b"jpeg")
    names = harness.names_until("trip")
    assert set(names) == {"trip"}


def test_deletion_is_reported(harness: Harness) -> None:
    (harness.inbox / "clip.mp4").write_bytes(b"video")
    harness.names_until("clip.mp4")
    os.remove(harness.inbox / "clip.mp4")
    harness.names_until("clip.mp4")


def test_junk_gives_no_event(harness: Harness) -> None:
    (harness.inbox / "trip").mkdir()
    harness.names_until("trip")
    (harness.inbox / ".DS_Store").write_bytes(b"finder")
    (harness.inbox / "._clip.mp4").write_bytes(b"appledouble")
    (harness.inbox / "clip.mp4.part").write_bytes(b"half")
    (harness.inbox / "@eaDir").mkdir()
    (harness.inbox / "@eaDir" / "clip.mp4@SynoEAStream").write_bytes(b"meta")
    (harness.inbox / "#recycle").mkdir()
    (harness.inbox / "#recycle" / "old.mp4").write_bytes(b"old")
    (harness.inbox / "trip" / ".DS_Store").write_bytes(b"finder")
    (harness.inbox / "trip" / "@eaDir").mkdir()
    time.sleep(2 * POLL)
    (harness.inbox / "zz-sentinel.mp4").write_bytes(b"x")

    assert set(harness.names_until("zz-sentinel.mp4")) == {"zz-sentinel.mp4"}


def test_siblings_of_the_inbox_and_symlink_targets_are_not_watched(harness: Harness, tmp_path: Path) -> None:
    done = tmp_path / "alice" / "done"
    done.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, harness.inbox / "link")
    harness.names_until("link")
    (done / "finished.mp4").write_bytes(b"x")
    (elsewhere / "deep.mp4").write_bytes(b"x")  # under a link: a follower would report "link" again
    time.sleep(2 * POLL)
    (harness.inbox / "zz-sentinel.mp4").write_bytes(b"x")

    assert set(harness.names_until("zz-sentinel.mp4")) == {"zz-sentinel.mp4"}


def test_a_burst_of_writes_to_one_file_queues_it_once_while_unread(harness: Harness) -> None:
    wait_until_watching(harness)
    with open(harness.inbox / "big.mp4", "wb") as handle:
        for _ in range(200):
            handle.write(b"x" * 1000)
            handle.flush()
    names = harness.names_until("big.mp4")
    assert names.count("big.mp4") <= 3


def test_an_exception_while_queueing_does_not_stop_later_events(tmp_path: Path, method: str) -> None:
    class FlakyQueue(queue.Queue[WatchEvent]):
        failures = 1

        def put_nowait(self, item: WatchEvent) -> None:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("consumer side broke once")
            super().put_nowait(item)

    h = Harness(tmp_path, method, events=FlakyQueue())
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    try:
        (h.inbox / "first.mp4").write_bytes(b"x")
        deadline = time.monotonic() + WAIT
        while not h.logged("watch_event_failed") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h.logged("watch_event_failed")
        (h.inbox / "second.mp4").write_bytes(b"x")
        h.names_until("second.mp4")
        assert h.health().alive
    finally:
        h.watcher.stop()


# ---- scanning -----------------------------------------------------------------------------------------

def test_startup_scan_finds_what_was_there_before(tmp_path: Path) -> None:
    h = Harness(tmp_path, "inotify")
    h.inbox.mkdir(parents=True)
    for name in ("a.mp4", "b.jpg", ".DS_Store", "c.mp4.part"):
        (h.inbox / name).write_bytes(b"x")
    (h.inbox / "trip").mkdir()
    h.watcher.start()
    try:
        assert h.drain(settle=0.2) == [], "observers never report files that were already there"
        assert h.watcher.scan() == 3
        assert sorted(h.drain()) == ["a.mp4", "b.jpg", "trip"]
    finally:
        h.watcher.stop()


def test_periodic_rescan_runs_every_rescan_seconds(tmp_path: Path) -> None:
    h = Harness(tmp_path, "inotify", rescan_seconds=300)
    h.inbox.mkdir(parents=True)
    (h.inbox / "missed.mp4").write_bytes(b"x")  # e.g. an event lost to an inotify overflow
    h.watcher.start()
    try:
        h.watcher.tick(1000.0)
        h.watcher.tick(1299.0)
        assert h.drain() == []
        h.watcher.tick(1300.0)
        assert h.drain() == ["missed.mp4"]
        h.watcher.tick(1301.0)
        assert h.drain() == []
    finally:
        h.watcher.stop()


def test_a_full_bounded_queue_makes_the_next_tick_rescan(tmp_path: Path) -> None:
    h = Harness(tmp_path, "inotify", events=queue.Queue(maxsize=1), rescan_seconds=300)
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    try:
        h.watcher.tick(0.0)
        (h.inbox / "a.mp4").write_bytes(b"x")
        (h.inbox / "b.mp4").write_bytes(b"x")  # dropped: the queue holds one event
        time.sleep(0.3)
        assert h.drain() == ["a.mp4"]
        h.watcher.tick(1.0)
        assert h.drain() == ["a.mp4"], "the rescan starts again from the top"
    finally:
        h.watcher.stop()


# ---- inboxes that are missing, vanish or are replaced ------------------------------------------------------

def test_missing_inbox_is_not_created_and_is_watched_once_it_appears(tmp_path: Path, method: str) -> None:
    h = Harness(tmp_path, method)
    h.watcher.start()
    try:
        assert not h.inbox.exists() and not h.inbox.parent.exists()
        health = h.health()
        assert (health.available, health.alive) == (False, False)
        assert "does not exist" in health.message
        assert len(h.logged("inbox_unavailable")) == 1
        h.watcher.tick(10.0)
        assert len(h.logged("inbox_unavailable")) == 1, "said once, not every second"

        h.inbox.mkdir(parents=True)
        (h.inbox / "early.mp4").write_bytes(b"x")
        h.watcher.tick(11.0)
        assert (h.health().available, h.health().alive) == (True, True)
        assert h.drain() == ["early.mp4"], "files already there when it appeared are scanned"
        (h.inbox / "late.mp4").write_bytes(b"x")
        h.names_until("late.mp4")
    finally:
        h.watcher.stop()


def test_inbox_that_vanishes_and_comes_back(harness: Harness) -> None:
    shutil.rmtree(harness.inbox)
    harness.watcher.tick(100.0)
    assert harness.health().available is False
    assert harness.logged("inbox_unavailable")
    harness.drain(settle=2 * POLL)

    harness.inbox.mkdir()
    (harness.inbox / "back.mp4").write_bytes(b"x")
    harness.watcher.tick(101.0)
    assert harness.health().available and harness.health().alive
    assert harness.drain() == ["back.mp4"]
    (harness.inbox / "new.mp4").write_bytes(b"x")
    harness.names_until("new.mp4")


def test_inbox_replaced_by_another_folder_is_watched_anew(harness: Harness) -> None:
    """A share remounted at the same path: inotify would keep watching the old folder if not restarted."""
    wait_until_watching(harness)
    os.rename(harness.inbox, harness.inbox.with_name("inbox.old"))
    harness.inbox.mkdir()
    harness.watcher.tick(100.0)
    assert harness.logged("observer_died")
    assert harness.health().restarts == 1
    harness.drain(settle=2 * POLL)
    (harness.inbox / "after.mp4").write_bytes(b"x")
    harness.names_until("after.mp4")


# ---- observers that die --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kill", ["observer", "emitter"])
def test_dead_observer_is_restarted_with_backoff_and_rescanned(harness: Harness, kill: str) -> None:
    wait_until_watching(harness)
    observer = harness.watcher._observers["alice"]
    if kill == "observer":
        observer.stop()
    else:  # what watchdog's polling emitter does on its own when a share disappears
        next(iter(observer.emitters)).stop()
    time.sleep(0.2)
    assert not harness.health().alive

    harness.watcher.tick(100.0)
    assert harness.logged("observer_died")
    harness.watcher.tick(100.5)
    assert not harness.logged("observer_restarted"), "the first restart waits 1 s"
    (harness.inbox / "while-dead.mp4").write_bytes(b"x")
    harness.watcher.tick(101.0)
    assert harness.logged("observer_restarted")
    health = harness.health()
    assert (health.alive, health.restarts) == (True, 1)
    assert "while-dead.mp4" in harness.drain(), "the restart rescans what was missed"

    (harness.inbox / "after.mp4").write_bytes(b"x")
    harness.names_until("after.mp4")


def test_backoff_doubles_up_to_a_minute_and_resets_after_a_healthy_minute(tmp_path: Path) -> None:
    h = Harness(tmp_path, "polling")
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    now = 0.0
    delays = []
    try:
        for _ in range(8):
            h.watcher._observers["alice"].stop()
            h.watcher.tick(now)  # notices the death
            died_at = now
            while not h.health().alive:
                now += 0.5
                h.watcher.tick(now)
            delays.append(now - died_at)
        assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
        h.watcher.tick(now + 1)
        h.watcher.tick(now + 61)  # healthy for a minute
        h.watcher._observers["alice"].stop()
        h.watcher.tick(now + 62)
        h.watcher.tick(now + 63)
        assert h.health().alive, "after a healthy minute the backoff starts again at 1 s"
    finally:
        h.watcher.stop()


# ---- choosing the method, and inotify limits ---------------------------------------------------------------

@pytest.mark.parametrize(("fs_type", "expected"), [("cifs", "polling"), ("nfs4", "polling"), ("ext4", "inotify")])
def test_auto_uses_the_mount_table(tmp_path: Path, fs_type: str, expected: str) -> None:
    h = Harness(tmp_path, "auto", mounts=[Mount("/", "ext4", "/dev/sda1"), Mount(str(tmp_path), fs_type, "src")])
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    try:
        health = h.health()
        assert health.method == expected and fs_type in health.reason
        assert h.logged("observer_started")[0]["method"] == expected
        (h.inbox / "clip.mp4").write_bytes(b"x")
        h.names_until("clip.mp4")
    finally:
        h.watcher.stop()


class NoWatchesLeft(InotifyObserver):
    """A real inotify observer whose watch cannot be added, as when fs.inotify.max_user_watches is used up."""

    def start(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


@pytest.mark.parametrize(("error", "sysctl"), [(errno.ENOSPC, "fs.inotify.max_user_watches"),
                                               (errno.EMFILE, "fs.inotify.max_user_instances")])
def test_inotify_limit_falls_back_to_polling_and_says_how_to_fix_it(tmp_path: Path, error: int, sysctl: str) -> None:
    asked: list[str] = []

    def factory(method: str, poll_interval: float) -> BaseObserver:
        asked.append(method)
        if method == "inotify" and error == errno.EMFILE:
            raise OSError(errno.EMFILE, "inotify instance limit reached")
        if method == "inotify":
            return NoWatchesLeft()
        return make_observer(method, poll_interval)

    h = Harness(tmp_path, "inotify", observer_factory=factory)
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    try:
        health = h.health()
        assert (health.method, health.alive) == ("polling", True)
        assert sysctl in health.reason and "sysctl" in health.reason and "host" in health.reason
        (logged,) = h.logged("inotify_limit_reached")
        assert sysctl in logged["message"]
        (h.inbox / "clip.mp4").write_bytes(b"x")
        h.names_until("clip.mp4")

        h.watcher._observers["alice"].stop()
        h.watcher.tick(0.0)
        h.watcher.tick(1.0)
        assert h.health().method == "polling" and h.health().alive
        assert asked == ["inotify", "polling", "polling"], "the fallback sticks; inotify is not retried"
    finally:
        h.watcher.stop()


def test_stop_joins_promptly(tmp_path: Path, method: str) -> None:
    h = Harness(tmp_path, method, poll_interval=5.0)
    h.inbox.mkdir(parents=True)
    h.watcher.start()
    observer = h.watcher._observers["alice"]
    started = time.monotonic()
    h.watcher.stop()
    assert time.monotonic() - started < 2.5
    assert not observer.is_alive()
    assert not h.health().alive
