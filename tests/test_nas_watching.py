"""Watching that holds up on a NAS, proven through the running daemon: real folders, real inotify and polling
observers, real uploads to the emulator.

Writers that pause, reopen or rename; junk and symlinks left alone; unreadable files reported and picked up
later; observers killed under the daemon's feet; an inbox whose share goes away and comes back; names in NFD,
with bytes that are not UTF-8, with spaces, and as long as the filesystem allows.
"""

from __future__ import annotations

import builtins
import datetime
import errno
import hashlib
import json
import os
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from watchfolder import fsinfo
from watchfolder.commands import status
from watchfolder.intake import watcher
from watchfolder.media import samples
from watchfolder.ops import report

OBSERVERS = ["inotify", "polling"]
SETTLE = 0.6      # settle_seconds for these tests: well above every pause a "still writing" writer makes
PAUSE = 0.2       # a writer's pause between pieces, a third of the settle window


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mp4_bytes(tmp_path: Path, size: int = 300_000, seed: int = 0) -> bytes:
    source = tmp_path / f"source-{size}-{seed}.mp4"
    samples.write_mp4(source, size=size, seed=seed)
    return source.read_bytes()


def publishes(rig: Rig) -> list[Any]:
    return list(rig.emulator.records.publishes)


def pieces(data: bytes, count: int) -> list[bytes]:
    return [data[index * len(data) // count:(index + 1) * len(data) // count] for index in range(count)]


def live_status(rig: Rig) -> dict[str, Any]:
    """What ``watchfolder status --json`` shows right now."""
    return report.collect(rig.settings, rig.emulator.clock.now())


def notices(rig: Rig) -> list[dict[str, Any]]:
    return list(live_status(rig)["notices"])


def status_shows(rig: Rig, predicate: Callable[[dict[str, Any]], Any], what: str) -> Any:
    """Wait until ``watchfolder status --json`` satisfies ``predicate``, moving the daemon's clock on meanwhile.

    The daemon refreshes what status reads every 2 s of its time; moving its clock saves the wait. Only for
    moments when nothing is settling (a jump would make a file look quiet for longer than it was).
    """
    return hurry(rig, lambda: predicate(live_status(rig)), what)


def hurry(rig: Rig, predicate: Callable[[], Any], what: str) -> Any:
    """Wait until ``predicate()`` is truthy, moving the daemon's clock half a second on at every look."""
    def check() -> Any:
        rig.emulator.clock.advance(0.5)
        return predicate()

    return wait_for(check, 10, interval=0.1, what=what)


@pytest.fixture(params=OBSERVERS)
def observer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def nas_rig(make_rig: Callable[..., Rig], observer: str = "inotify", **overrides: Any) -> Rig:
    values: dict[str, Any] = {"watch.observer": observer, "watch.settle_seconds": SETTLE}
    values.update(overrides)
    return make_rig(overrides=values)


# ---- writers ------------------------------------------------------------------------------------------------

def slow_writer(inbox: Path, name: str, data: bytes) -> None:
    """One open file, written in pieces with pauses (a copy over a slow link)."""
    with open(inbox / name, "wb") as handle:
        for piece in pieces(data, 6):
            handle.write(piece)
            handle.flush()
            time.sleep(PAUSE)


def reopening_writer(inbox: Path, name: str, data: bytes) -> None:
    """Write, close, reopen and write again, as scanners and some SMB clients do."""
    for index, piece in enumerate(pieces(data, 4)):
        with open(inbox / name, "wb" if index == 0 else "ab") as handle:
            handle.write(piece)
        time.sleep(PAUSE)


def renaming_writer(inbox: Path, name: str, data: bytes) -> None:
    """Write under a hidden temp name, pausing longer than the settle window, then rename (rsync, Syncthing)."""
    temp = inbox / f".{name}.Xq7Lm2"
    with open(temp, "wb") as handle:
        for piece in pieces(data, 2):
            handle.write(piece)
            handle.flush()
            time.sleep(SETTLE + 0.2)  # a temp name is never taken, however long it is quiet
    os.rename(temp, inbox / name)


def mtime_keeping_writer(inbox: Path, name: str, data: bytes) -> None:
    """Set the final size first, fill it in, and put the source's mtime back after every write, as SMB copies
    that preserve the source's time do: size and mtime look final from the start, only the change time moves."""
    source_time_ns = 1_600_000_000 * 10**9
    with open(inbox / name, "wb") as handle:
        handle.truncate(len(data))
        os.utime(handle.fileno(), ns=(source_time_ns, source_time_ns))
        offset = 0
        for piece in pieces(data, 8):   # longer than the settle window: an early take would read zeros
            handle.seek(offset)
            handle.write(piece)
            handle.flush()
            os.utime(handle.fileno(), ns=(source_time_ns, source_time_ns))
            offset += len(piece)
            time.sleep(PAUSE)


WRITERS = {"slow": slow_writer, "reopening": reopening_writer, "renaming": renaming_writer,
           "mtime-keeping": mtime_keeping_writer}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_each_real_writer_gives_exactly_one_upload_of_the_complete_file(make_rig, tmp_path, observer, writer):
    rig = nas_rig(make_rig, observer)
    rig.start()
    data = mp4_bytes(tmp_path)
    WRITERS[writer](rig.folder("alice", "inbox"), "clip.mp4", data)

    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    assert sidecar["sha256"] == digest(data)
    assert [p.sha256 for p in publishes(rig)] == [digest(data)], "one upload, of the complete file"
    assert (rig.folder("alice", "done") / "clip.mp4").read_bytes() == data
    assert not list(rig.folder("alice", "failed").iterdir())


def test_a_file_still_being_written_is_shown_in_status_and_never_dropped(make_rig, tmp_path):
    rig = nas_rig(make_rig)
    rig.start()
    data = mp4_bytes(tmp_path, size=600_000)
    inbox = rig.folder("alice", "inbox")
    seen: list[str] = []
    with open(inbox / "growing.mp4", "wb") as handle:
        for piece in pieces(data, 14):   # about 3 s of writing (status is refreshed every 2 s), never quiet
            handle.write(piece)
            handle.flush()
            seen += [n["note"] for n in notices(rig) if n["name"] == "growing.mp4"]
            time.sleep(PAUSE)
    assert any(note.startswith("being written") for note in seen), seen
    assert not [i for i in live_status(rig)["items"] if i["name"] == "growing.mp4" and i["state"] == "failed"]
    assert rig.wait_sidecar("alice", "growing.mp4")["sha256"] == digest(data)
    assert len(publishes(rig)) == 1


# ---- junk and symlinks -----------------------------------------------------------------------------------------

def test_junk_stays_untouched_while_a_good_file_beside_it_is_done(make_rig, tmp_path, observer):
    rig = nas_rig(make_rig, observer, **{"watch.ignore": ["*.bak"], "watch.rescan_seconds": 0.5})
    inbox = rig.folder("alice", "inbox")
    inbox.mkdir(parents=True)
    video = mp4_bytes(tmp_path, seed=1)
    junk = {
        ".DS_Store": b"\0\0\0\1Bud1",
        "._clip.mp4": b"\0\5\26\7AppleDouble",
        "clip.mp4.part": video[:1000],
        "clip.mp4.bak": video,                                  # watch.ignore
        "@eaDir/clip.mp4@SynoEAStream": b"synology metadata",
        "@eaDir/clip.mp4/SYNOVIDEO_VIDEO_SCREENSHOT.jpg": b"thumb",
        "#recycle/old.mp4": video,
    }
    for relative, content in junk.items():
        (inbox / relative).parent.mkdir(parents=True, exist_ok=True)
        (inbox / relative).write_bytes(content)
    before = {relative: os.lstat(inbox / relative).st_mtime_ns for relative in junk}
    rig.start()
    good = mp4_bytes(tmp_path, seed=2)
    (tmp_path / "good.mp4").write_bytes(good)
    rig.drop("alice", "clip.mp4", tmp_path / "good.mp4")
    rig.wait_sidecar("alice", "clip.mp4")
    time.sleep(0.6)   # at least one more safety-net rescan over the junk

    for relative, content in junk.items():
        assert (inbox / relative).read_bytes() == content, relative
        assert os.lstat(inbox / relative).st_mtime_ns == before[relative], relative
    assert [p.sha256 for p in publishes(rig)] == [digest(good)]
    assert sorted(os.listdir(rig.folder("alice", "done"))) == ["clip.mp4", "clip.mp4.json"]
    assert os.listdir(rig.folder("alice", "failed")) == []
    assert notices(rig) == []


def test_a_symlink_out_of_the_inbox_is_reported_and_neither_uploaded_nor_moved(make_rig, tmp_path, observer):
    rig = nas_rig(make_rig, observer, **{"watch.rescan_seconds": 0.5})
    rig.start()
    inbox = rig.folder("alice", "inbox")
    outside = tmp_path / "private"
    outside.mkdir()
    secret = mp4_bytes(tmp_path, seed=3)
    (outside / "secret.mp4").write_bytes(secret)
    os.symlink(outside / "secret.mp4", inbox / "secret.mp4")
    os.symlink(outside, inbox / "holiday")       # a link to a folder: not a photo post, not walked
    good = mp4_bytes(tmp_path, seed=4)
    (tmp_path / "good.mp4").write_bytes(good)
    rig.drop("alice", "good.mp4", tmp_path / "good.mp4")
    rig.wait_sidecar("alice", "good.mp4")

    links = {"secret.mp4", "holiday"}
    status_shows(rig, lambda s: {n["name"] for n in s["notices"] if "symlink" in n["note"]} == links,
                 "both links reported in status")
    assert os.path.islink(inbox / "secret.mp4") and os.path.islink(inbox / "holiday")
    assert (outside / "secret.mp4").read_bytes() == secret
    assert [p.sha256 for p in publishes(rig)] == [digest(good)]
    assert os.listdir(rig.folder("alice", "failed")) == []
    assert sorted(os.listdir(rig.folder("alice", "done"))) == ["good.mp4", "good.mp4.json"]


# ---- permissions ---------------------------------------------------------------------------------------------

class Unreadable:
    """Makes one file unreadable to the daemon until ``allow()``.

    The file gets mode 000, which is the whole story for a normal user. Root (as in CI) reads any file
    whatever its mode, so there ``open`` and ``os.open`` also refuse that one path with EACCES, exactly as
    the kernel would for anyone else.
    """

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.locked = threading.Event()
        self.locked.set()
        path.chmod(0)
        if os.geteuid() == 0:
            real_open, real_os_open = builtins.open, os.open

            def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
                self._refuse(file)
                return real_open(file, *args, **kwargs)

            def guarded_os_open(file: Any, *args: Any, **kwargs: Any) -> int:
                self._refuse(file)
                return real_os_open(file, *args, **kwargs)

            monkeypatch.setattr(builtins, "open", guarded_open)
            monkeypatch.setattr(os, "open", guarded_os_open)

    def _refuse(self, file: Any) -> None:
        if self.locked.is_set() and isinstance(file, str | bytes | os.PathLike) and \
                os.fsencode(file) == os.fsencode(self.path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(file))

    def allow(self) -> None:
        self.locked.clear()
        self.path.chmod(0o644)


def test_an_unreadable_file_is_reported_then_processed_once_readable(make_rig, tmp_path, monkeypatch):
    rig = nas_rig(make_rig)
    rig.start()
    inbox = rig.folder("alice", "inbox")
    data = mp4_bytes(tmp_path, seed=5)
    (tmp_path / "locked.mp4").write_bytes(data)
    lock = Unreadable(tmp_path / "locked.mp4", monkeypatch)
    lock.path = inbox / "locked.mp4"
    rig.drop("alice", "locked.mp4", tmp_path / "locked.mp4")

    status_shows(rig, lambda s: [n for n in s["notices"] if n["name"] == "locked.mp4"
                                 and n["note"].startswith("cannot read: permission denied")],
                 "status says 'cannot read: permission denied'")
    assert (inbox / "locked.mp4").exists(), "it stays where it is"
    assert publishes(rig) == [] and os.listdir(rig.folder("alice", "failed")) == []

    lock.allow()
    rig.emulator.clock.advance(10)   # the daemon looks at unreadable files again every few seconds
    assert rig.wait_sidecar("alice", "locked.mp4")["sha256"] == digest(data)
    assert [p.sha256 for p in publishes(rig)] == [digest(data)]
    status_shows(rig, lambda s: not [n for n in s["notices"] if n["name"] == "locked.mp4"], "notice cleared")


def test_a_file_that_becomes_unreadable_while_it_waits_its_turn_waits_and_never_fails(make_rig, tmp_path,
                                                                                      monkeypatch):
    rig = nas_rig(make_rig)
    rig.start()
    later = datetime.datetime.fromtimestamp(rig.emulator.clock.now() + 3600, datetime.UTC)
    data = mp4_bytes(tmp_path, seed=14)
    (tmp_path / "clip.yaml").write_text(f'publish_at: "{later.isoformat()}"\n', encoding="utf-8")
    (tmp_path / "clip.mp4").write_bytes(data)
    rig.drop("alice", "clip.yaml", tmp_path / "clip.yaml")
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: [i for i in live_status(rig)["items"] if i["name"] == "clip.mp4" and i["state"] == "waiting"],
             10, what="clip.mp4 taken in and waiting for its publish_at")

    lock = Unreadable(rig.folder("alice", "inbox") / "clip.mp4", monkeypatch)
    rig.emulator.clock.advance(3700)   # its turn comes; the share's permissions changed meanwhile
    (row,) = status_shows(rig, lambda s: [i for i in s["items"] if i["name"] == "clip.mp4"
                                          and i["wait_reason"] == "cannot_read"], "parked as unreadable")
    assert row["state"] == "waiting" and "permission denied" in row["detail"]
    assert publishes(rig) == [] and os.listdir(rig.folder("alice", "failed")) == []

    lock.allow()
    rig.emulator.clock.advance(120)
    assert rig.wait_sidecar("alice", "clip.mp4")["sha256"] == digest(data)


# ---- supervision ---------------------------------------------------------------------------------------------

def test_an_observer_stopped_under_the_daemon_is_restarted_and_later_files_arrive(make_rig, tmp_path, observer):
    rig = nas_rig(make_rig, observer)
    daemon = rig.start()
    assert daemon.watcher is not None
    (dead,) = [h for h in daemon.watcher.health() if h.account == "alice"]
    assert dead.alive and dead.method == observer
    running = daemon.watcher.observer("alice")
    assert running is not None
    running.stop()   # as when a polling thread dies on a share outage
    early = mp4_bytes(tmp_path, seed=15)
    (tmp_path / "while-dead.mp4").write_bytes(early)
    rig.drop("alice", "while-dead.mp4", tmp_path / "while-dead.mp4")   # no observer may see this one
    hurry(rig, lambda: daemon.watcher.health()[0].restarts == 1 and daemon.watcher.health()[0].alive,
          "the observer restarted after its backoff")
    assert daemon.watcher.observer("alice") is not running

    data = mp4_bytes(tmp_path, seed=6)
    (tmp_path / "after.mp4").write_bytes(data)
    rig.drop("alice", "after.mp4", tmp_path / "after.mp4")
    assert rig.wait_sidecar("alice", "after.mp4")["sha256"] == digest(data)
    assert rig.wait_sidecar("alice", "while-dead.mp4")["sha256"] == digest(early), "the restart rescanned"


def test_an_inbox_whose_share_goes_away_keeps_its_waiting_items_and_is_found_again(make_rig, tmp_path, observer):
    rig = nas_rig(make_rig, observer)
    daemon = rig.start()
    inbox = rig.folder("alice", "inbox")
    later = datetime.datetime.fromtimestamp(rig.emulator.clock.now() + 3600, datetime.UTC)
    data = mp4_bytes(tmp_path, seed=7)
    (tmp_path / "clip.yaml").write_text(f'publish_at: "{later.isoformat()}"\n', encoding="utf-8")
    (tmp_path / "clip.mp4").write_bytes(data)
    rig.drop("alice", "clip.yaml", tmp_path / "clip.yaml")
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    wait_for(lambda: [i for i in live_status(rig)["items"] if i["name"] == "clip.mp4" and i["state"] == "waiting"],
             10, what="clip.mp4 waiting for its publish_at")

    away = inbox.with_name("inbox.unmounted")
    os.rename(inbox, away)   # the share is gone: the path no longer exists
    rig.emulator.clock.advance(3700)   # its turn comes while the share is away
    shown = status_shows(rig, lambda s: not s["daemon"]["observers"][0]["available"] and s,
                         "status says the inbox is unavailable")
    assert "unavailable" in status.render(shown)
    (row,) = status_shows(rig, lambda s: [i for i in s["items"] if i["name"] == "clip.mp4"
                                          and i["wait_reason"] == "inbox_unavailable"],
                          "the worker found the inbox away and parked the item")
    assert row["state"] == "waiting", "not cancelled: the share going away is not the user taking it out"
    assert rig.thread is not None and rig.thread.is_alive(), "the daemon did not crash"
    assert not inbox.exists(), "the inbox is not re-created while the share is away"
    assert publishes(rig) == []

    os.rename(away, inbox)   # the share is back
    rig.emulator.clock.advance(120)
    assert rig.wait_sidecar("alice", "clip.mp4")["sha256"] == digest(data)
    (tmp_path / "new.mp4").write_bytes(mp4_bytes(tmp_path, seed=8))
    rig.drop("alice", "new.mp4", tmp_path / "new.mp4")
    rig.wait_sidecar("alice", "new.mp4")
    assert daemon.watcher is not None and daemon.watcher.health()[0].alive


# ---- choosing the method -------------------------------------------------------------------------------------

PROC_MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda2 / ext4 rw,relatime 0 0
/dev/sdb1 /srv/local\\040disk btrfs rw,relatime,space_cache=v2,subvolid=5,subvol=/ 0 0
tank/media /tank/media zfs rw,xattr,noacl 0 0
//nas/video /mnt/nas/video cifs rw,relatime,vers=3.1.1,cache=strict,username=me,uid=1000 0 0
//nas/smb3 /mnt/smb3 smb3 rw,relatime,vers=3.0 0 0
nas:/export/tiktok /mnt/nfs nfs rw,relatime,vers=3,hard,proto=tcp 0 0
nas:/export/v4 /mnt/nfs4 nfs4 rw,relatime,vers=4.2,hard,proto=tcp 0 0
me@host:/home/me /mnt/sshfs fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000 0 0
hostshare /mnt/9p 9p rw,relatime,trans=virtio 0 0
"""


def test_the_daemon_polls_an_inbox_on_a_cifs_share_and_says_so(make_rig, tmp_path, monkeypatch):
    rig = nas_rig(make_rig, "auto")
    table = PROC_MOUNTS + f"//nas/tiktok {rig.root} cifs rw,relatime,vers=3.1.1 0 0\n"
    monkeypatch.setattr(fsinfo, "read_mounts", lambda: fsinfo.parse_mounts(table))
    rig.start()
    (obs,) = wait_for(lambda: live_status(rig)["daemon"]["observers"], 10, what="observers in status")
    assert obs["method"] == "polling" and "cifs" in obs["message"]
    data = mp4_bytes(tmp_path, seed=9)
    (tmp_path / "clip.mp4").write_bytes(data)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    assert rig.wait_sidecar("alice", "clip.mp4")["sha256"] == digest(data)


def test_intake_keeps_an_entry_it_cannot_read_for_now_and_takes_it_later(make_rig, tmp_path):
    """An I/O error from a share (EIO, ESTALE) is logged and retried, never a crash of the main loop."""
    import queue as queue_module

    from watchfolder.intake import intake as intake_module
    from watchfolder.intake import settle
    from watchfolder.store.store import Store

    rig = nas_rig(make_rig)
    inbox = rig.folder("alice", "inbox")
    inbox.mkdir(parents=True)
    samples.write_mp4(inbox / "clip.mp4", size=100_000)
    broken = threading.Event()
    broken.set()

    def fingerprint(path: Path, ignore_globs: Any = ()) -> settle.Fingerprint | None:
        if broken.is_set():
            raise OSError(errno.EIO, "Input/output error")
        return settle.fingerprint(path, ignore_globs)

    events: queue_module.Queue[watcher.WatchEvent] = queue_module.Queue()
    rig.state_dir.mkdir(exist_ok=True)
    store = Store(rig.state_dir)
    try:
        logged: list[tuple[str, dict[str, Any]]] = []

        class Log:
            def warning(self, event: str, **fields: Any) -> None:
                logged.append((event, fields))

            info = exception = warning

        intake = intake_module.Intake(rig.settings, store, events, log=Log(), fingerprint=fingerprint)
        events.put(watcher.WatchEvent("alice", "clip.mp4"))
        assert intake.step(1000.0) == 0
        (note,) = intake.waiting_entries(1000.0)
        assert note["name"] == "clip.mp4" and note["note"].startswith("cannot read it right now")
        assert [event for event, _ in logged] == ["inbox_read_failed"]
        broken.clear()
        assert intake.step(1001.0) == 0, "not due again yet"
        for now in (1031.0, 1032.0):
            intake.step(now)
        assert [i.name for i in store.items()] == ["clip.mp4"]
        assert intake.waiting_entries(1032.0) == []
    finally:
        store.close()


def test_an_item_finishing_while_its_share_is_away_is_moved_once_the_share_is_back(tmp_path):
    from watchfolder.core.model import State
    from watchfolder.daemon import finish, outbox
    from watchfolder.store.store import Store

    root = tmp_path / "root"
    root.mkdir()
    outbox.ensure_account_folders(root, "alice")
    samples.write_mp4(root / "alice" / "processing" / "clip.mp4", size=100_000)
    (tmp_path / "state").mkdir()
    store = Store(tmp_path / "state")
    try:
        item = store.add_item(account="alice", name="clip.mp4", kind="video", now=1.0, state=State.DONE,
                              folder="processing", size=100_000)
        os.rename(root / "alice", tmp_path / "alice.away")   # the share went away
        assert finish.finish(root, store, item, 2.0, structlog_stub()) is False
        assert store.get(item.id).moved == 0, "not recorded as moved: the file is on the share, not gone"
        assert "will retry" in (store.get(item.id).detail or "")
        assert not (root / "alice").exists(), "nothing is re-created while the share is away"

        os.rename(tmp_path / "alice.away", root / "alice")
        assert finish.finish(root, store, store.get(item.id), 3.0, structlog_stub()) is True
        assert (root / "alice" / "done" / "clip.mp4").exists()
        assert (root / "alice" / "done" / "clip.mp4.json").exists()
    finally:
        store.close()


def structlog_stub() -> Any:
    import structlog

    return structlog.get_logger("test")


def test_a_name_at_the_length_limit_is_shortened_only_as_far_as_its_sidecar_needs():
    from watchfolder.daemon import outbox

    name = "é" * 100 + "x" * 51 + ".mp4"        # 255 bytes: the most a name may have
    assert len(os.fsencode(name)) == 255
    assert outbox.suffixed(name, 1) == name, "fits as it is where no sidecar goes (processing/)"
    for number in (1, 2, 12):
        fitted = outbox.suffixed(name, number, outbox.SIDECAR_ROOM)
        assert len(os.fsencode(fitted + ".json")) <= 255 and fitted.endswith(".mp4")
        assert name.startswith(fitted.rsplit(" (", 1)[0] if number > 1 else fitted[:-4])
    assert outbox.suffixed("clip.mp4", 2, outbox.SIDECAR_ROOM) == "clip (2).mp4"
    undecodable = os.fsdecode(b"\xff" * 251 + b".mp4")
    assert len(os.fsencode(outbox.suffixed(undecodable, 1, outbox.SIDECAR_ROOM))) == 250


# ---- names ---------------------------------------------------------------------------------------------------

def test_nfd_non_utf8_spaced_and_very_long_names_go_through_end_to_end(make_rig, tmp_path, observer):
    rig = nas_rig(make_rig, observer)
    rig.start()
    inbox = rig.folder("alice", "inbox")
    nfd = unicodedata.normalize("NFD", "Café crème.mp4")
    long_name = "long " + "x" * (255 - len("long ") - len(".mp4")) + ".mp4"
    names: dict[bytes, tuple[str, bytes]] = {
        nfd.encode(): ("Café crème.mp4", mp4_bytes(tmp_path, seed=10)),
        b"clip \xff\xfe latin1 \xe9t\xe9.mp4": ("clip \\xff\\xfe latin1 \\xe9t\\xe9.mp4", mp4_bytes(tmp_path, seed=11)),
        b"  two  spaces  .mp4": ("  two  spaces  .mp4", mp4_bytes(tmp_path, seed=12)),
        long_name.encode(): (long_name, mp4_bytes(tmp_path, seed=13)),
    }
    # The NFD video's settings file spelled in NFC, as a Linux tool beside a Mac client would write it.
    (inbox / "Café crème.yaml").write_text('title: "au lait"\n', encoding="utf-8")
    for raw, (_, data) in names.items():
        staged = os.fsencode(tmp_path) + b"/" + raw
        with open(staged, "wb") as handle:
            handle.write(data)
        os.rename(staged, os.fsencode(inbox) + b"/" + raw)

    done = os.fsencode(rig.folder("alice", "done"))
    for raw, (shown, data) in names.items():
        stored = wait_for(lambda raw=raw: _stored_as(done, raw), 30, what=f"{shown} in done/ with its sidecar")
        sidecar = json.loads(Path(os.fsdecode(done + b"/" + stored + b".json")).read_text(encoding="utf-8"))
        assert sidecar["name"] == shown
        assert sidecar["sha256"] == digest(data)
        assert Path(os.fsdecode(done + b"/" + stored)).read_bytes() == data
        if len(raw) + len(b".json") <= 255:
            assert stored == raw, "kept under its original bytes"
        else:
            assert len(stored) + len(b".json") <= 255 and stored.endswith(b".mp4"), "shortened so a sidecar fits"
    assert sorted(p.sha256 for p in publishes(rig)) == sorted(digest(d) for _, d in names.values())
    nfd_sidecar = json.loads(Path(os.fsdecode(done + b"/" + nfd.encode() + b".json")).read_text(encoding="utf-8"))
    assert nfd_sidecar["post_settings"]["title"] == "au lait"
    assert nfd_sidecar["settings_file"] == "Café crème.yaml"
    assert os.listdir(inbox) == [] and os.listdir(rig.folder("alice", "failed")) == []


def _stored_as(done: bytes, raw: bytes) -> bytes | None:
    """The name media ``raw`` has in done/ once its sidecar is there too (same bytes, or a shortened form)."""
    media = [e for e in os.listdir(done) if not e.endswith(b".json") and e[:40] == raw[:40]]
    if len(media) == 1 and os.path.exists(done + b"/" + media[0] + b".json"):
        return media[0]
    return None
