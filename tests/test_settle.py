"""When is a dropped item finished: fingerprints of real files, and the settle window with time passed in."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from watchfolder.core.model import Item, State
from watchfolder.intake import settle
from watchfolder.intake.settle import GONE, SETTLED, WAITING, Fingerprint, Settler, fingerprint


def fp(size: int = 10, mtime_ns: int = 1, ctime_ns: int = 1, ino: int = 7, count: int = 1) -> Fingerprint:
    return Fingerprint(size=size, mtime_ns=mtime_ns, ctime_ns=ctime_ns, ino=ino, count=count)


def test_unchanged_for_the_window_settles() -> None:
    settler = Settler(10)
    assert settler.observe("clip.mp4", fp(), 100.0) == WAITING(110.0)
    assert settler.observe("clip.mp4", fp(), 105.0) == WAITING(110.0)
    assert settler.observe("clip.mp4", fp(), 110.0) == SETTLED
    assert settler.observe("clip.mp4", fp(), 500.0) == SETTLED


def test_verdicts_compare_as_their_documented_strings() -> None:
    settler = Settler(1)
    waiting = settler.observe("a", fp(), 0.0)
    assert (waiting.kind, waiting.until, waiting.waiting) == ("waiting", 1.0, True)
    assert settler.observe("a", fp(), 1.0).kind == "settled"
    assert settler.observe("a", None, 2.0).kind == "gone"


def test_a_file_growing_for_hours_stays_waiting_and_then_settles() -> None:
    """No retry cap: a slow writer is never given up on, and is taken once it has been quiet long enough."""
    settler = Settler(10)
    now = 0.0
    for second in range(0, 6 * 3600, 5):  # six hours, one more megabyte every 5 s
        now = float(second)
        verdict = settler.observe("big.mp4", fp(size=second * 1000), now)
        assert verdict == WAITING(now + 10)
    last = fp(size=(6 * 3600 - 5) * 1000)
    assert settler.observe("big.mp4", last, now + 9.9).waiting
    assert settler.observe("big.mp4", last, now + 10) == SETTLED


@pytest.mark.parametrize(
    "changed",
    [fp(size=11), fp(mtime_ns=2), fp(ctime_ns=2), fp(ino=8), fp(count=2),
     fp(size=11, ctime_ns=2)],  # the SMB copy that keeps the source's mtime: only size and ctime move
    ids=["size", "mtime", "ctime", "inode", "count", "smb-keeps-mtime"],
)
def test_any_change_restarts_the_window(changed: Fingerprint) -> None:
    settler = Settler(10)
    settler.observe("clip.mp4", fp(), 0.0)
    assert settler.observe("clip.mp4", changed, 9.0) == WAITING(19.0)
    assert settler.observe("clip.mp4", changed, 18.0).waiting
    assert settler.observe("clip.mp4", changed, 19.0) == SETTLED


def test_a_change_after_settling_makes_it_wait_again() -> None:
    settler = Settler(5)
    settler.observe("a", fp(), 0.0)
    assert settler.observe("a", fp(), 5.0) == SETTLED
    assert settler.observe("a", fp(size=99), 6.0) == WAITING(11.0)


def test_gone_forgets_the_key() -> None:
    settler = Settler(5)
    settler.observe("a", fp(), 0.0)
    assert settler.observe("a", None, 3.0) == GONE
    assert "a" not in settler
    assert settler.observe("a", fp(), 4.0) == WAITING(9.0), "a new file of the same name starts afresh"


def test_forget_starts_afresh_and_keys_are_independent() -> None:
    settler = Settler(5)
    settler.observe("a", fp(), 0.0)
    settler.observe("b", fp(), 0.0)
    settler.forget("a")
    assert settler.observe("a", fp(), 5.0) == WAITING(10.0)
    assert settler.observe("b", fp(), 5.0) == SETTLED


def test_growing_since_is_the_first_observed_change_of_the_current_stretch() -> None:
    settler = Settler(5)
    settler.observe("a", fp(size=1), 0.0)
    assert settler.growing_since("a") is None, "seen once: not known to be changing"
    settler.observe("a", fp(size=2), 3.0)
    settler.observe("a", fp(size=3), 6.0)
    assert settler.growing_since("a") == 3.0
    settler.observe("a", fp(size=3), 11.0)
    assert settler.growing_since("a") is None, "settled"
    settler.observe("a", fp(size=4), 12.0)
    assert settler.growing_since("a") == 12.0
    assert settler.growing_since("unknown") is None


def test_a_clock_going_backwards_does_not_settle_early() -> None:
    settler = Settler(10)
    settler.observe("a", fp(), 100.0)
    assert settler.observe("a", fp(), 50.0) == WAITING(60.0)
    assert settler.observe("a", fp(), 59.0).waiting


def test_zero_settle_seconds_settles_at_first_sight_and_negative_is_refused() -> None:
    assert Settler(0).observe("a", fp(), 0.0) == SETTLED
    with pytest.raises(ValueError, match="settle_seconds"):
        Settler(-1)


# ---- fingerprints of real files -----------------------------------------------------------------

def _tick() -> None:
    # File times come from the kernel's coarse clock (a few ms per step): wait out one step so two
    # writes in a row really get different times, as they do for any real writer.
    time.sleep(0.02)


def test_fingerprint_of_a_file_is_its_lstat(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"12345")
    info = os.lstat(path)
    assert fingerprint(path) == Fingerprint(5, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, 1, info.st_dev)
    assert fingerprint(tmp_path / "missing.mp4") is None


def test_a_real_slow_writer_stays_waiting_until_it_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "slow.mp4"
    settler = Settler(10)
    with open(path, "wb") as handle:
        for second in range(30):  # one write every (simulated) second for half a minute
            handle.write(b"x" * 4096)
            handle.flush()
            assert settler.observe("slow.mp4", fingerprint(path), float(second)).waiting
    assert settler.observe("slow.mp4", fingerprint(path), 30.0).waiting, "quiet for 1 s only"
    assert settler.observe("slow.mp4", fingerprint(path), 39.0) == SETTLED


def test_write_close_reopen_write_is_seen_as_a_change(tmp_path: Path) -> None:
    path = tmp_path / "scan.mp4"
    path.write_bytes(b"part one")
    first = fingerprint(path)
    _tick()
    with open(path, "ab") as handle:  # the scanner that closes and reopens the file
        handle.write(b" and part two")
    second = fingerprint(path)
    settler = Settler(10)
    settler.observe("scan.mp4", first, 0.0)
    assert settler.observe("scan.mp4", second, 9.0) == WAITING(19.0)


def test_copy_that_keeps_the_source_mtime_is_still_a_change(tmp_path: Path) -> None:
    """An SMB copy sets the source's mtime; the size and ctime still move while it is written."""
    path = tmp_path / "copy.mp4"
    path.write_bytes(b"x" * 100)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    first = fingerprint(path)
    _tick()
    with open(path, "ab") as handle:
        handle.write(b"y" * 100)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    second = fingerprint(path)
    assert first is not None and second is not None
    assert first.mtime_ns == second.mtime_ns
    assert first != second


def test_a_metadata_only_change_moves_the_ctime(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x")
    first = fingerprint(path)
    _tick()
    os.chmod(path, 0o600)
    assert fingerprint(path) != first


def test_symlink_is_fingerprinted_as_the_link(tmp_path: Path) -> None:
    target = tmp_path / "target.mp4"
    target.write_bytes(b"x" * 1000)
    link = tmp_path / "link.mp4"
    os.symlink(target, link)
    link_fp = fingerprint(link)
    assert link_fp is not None and link_fp.ino == os.lstat(link).st_ino != os.stat(target).st_ino


def test_folder_fingerprint_aggregates_and_ignores_nas_junk(tmp_path: Path) -> None:
    trip = tmp_path / "trip"
    trip.mkdir()
    (trip / "1.jpg").write_bytes(b"a" * 10)
    (trip / "2.jpg").write_bytes(b"b" * 20)
    before = fingerprint(trip)
    assert before is not None and (before.size, before.count) == (30, 2)

    (trip / ".DS_Store").write_bytes(b"finder")
    (trip / "@eaDir").mkdir()
    (trip / "@eaDir" / "1.jpg@SynoEAStream").write_bytes(b"meta")
    (trip / "old.bak").write_bytes(b"x")
    assert fingerprint(trip, ["*.bak"]) == before, "indexers writing metadata do not unsettle the folder"

    _tick()
    (trip / "3.jpg").write_bytes(b"c")
    grown = fingerprint(trip, ["*.bak"])
    assert grown is not None and (grown.size, grown.count) == (31, 3)


def test_folder_fingerprint_sees_a_rename_inside(tmp_path: Path) -> None:
    trip = tmp_path / "trip"
    trip.mkdir()
    (trip / "1.jpg").write_bytes(b"a")
    (trip / "2.jpg").write_bytes(b"b")
    before = fingerprint(trip)
    os.rename(trip / "2.jpg", trip / "0.jpg")  # same sizes, same times, same count
    after = fingerprint(trip)
    assert after is not None and before is not None
    assert (after.size, after.count, after.mtime_ns) == (before.size, before.count, before.mtime_ns)
    assert after != before
    assert fingerprint(trip) == after, "stable when nothing changes"


def test_the_same_inode_on_another_device_is_another_file(tmp_path: Path) -> None:
    """Inode numbers repeat across filesystems: a name that now resolves to another device (a mount or bind
    mount laid over the inbox) holds another file even with the same inode, size and times."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 100)
    now = settle.fingerprint(path)
    assert now is not None and now.dev == os.stat(path).st_dev
    info = os.stat(path)
    recorded = Item(id=1, account="alice", name="clip.mp4", kind="video", folder="inbox", state=State.QUEUED,
                    settings_name=None, size=info.st_size, mtime_ns=info.st_mtime_ns, ctime_ns=info.st_ctime_ns,
                    ino=info.st_ino, sha256=None, content_type=None, detected_at=0.0, updated_at=0.0,
                    next_attempt_at=None, wait_reason=None, attempts=0, publish_id=None, upload_url=None,
                    upload_expires_at=None, uploaded_bytes=0, chunk_size=None, chunk_count=None,
                    init_started_at=None, init_count=0, orphans="[]", status=None, post_ids="[]", error_code=None,
                    error_message=None, error_log_id=None, moved=0, result_name=None, staged="[]", publish_at=None,
                    detail=None, duplicate_of=None, source_mode=None, post_info=None, dev=info.st_dev)
    assert not settle.differs(now, recorded)
    assert settle.differs(now, dataclasses.replace(recorded, dev=info.st_dev + 1))
    assert not settle.differs(now, dataclasses.replace(recorded, dev=None))      # recorded before devices were
    assert settle.differs(now, dataclasses.replace(recorded, ctime_ns=info.st_ctime_ns - 1))
