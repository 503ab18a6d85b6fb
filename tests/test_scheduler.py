"""Never fail what can wait: pacing, caps as waits, fairness between accounts, retries, the user in charge."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig, wait_for
from watchfolder.commands import retry, status
from watchfolder.emulator.clock import OffsetClock
from watchfolder.media import samples
from watchfolder.ops import report

INITS = {"inbox_init", "video_init", "content_init"}


def make_videos(folder: Path, count: int, prefix: str = "clip", size: int = 60_000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"{prefix}{index:02d}.mp4"
        samples.write_mp4(path, size=size + index, seed=index + len(prefix) * 100)
        paths.append(path)
    return paths


def done_names(rig: Rig, account: str = "alice") -> set[str]:
    return {p.name[:-5] for p in rig.folder(account, "done").glob("*.json")}


def test_twenty_files_are_paced_to_six_inits_a_minute_without_a_single_429(tmp_path):
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          init_per_minute=6, pending_share_cap=100) as emulator:
        rig = Rig(tmp_path / "rig", emulator, overrides={"tiktok.init_per_minute": 6})
        sources = make_videos(tmp_path / "src", 20)
        rig.start()
        for path in sources:
            rig.drop("alice", path.name, path)
        deadline = time.monotonic() + 90
        while len(done_names(rig)) < 20 and time.monotonic() < deadline:
            before = len(done_names(rig))
            time.sleep(1.0)
            if len(done_names(rig)) == before:
                emulator.clock.advance(20)   # the daemon parks until the window frees; move time on
        assert len(done_names(rig)) == 20
        records = emulator.records.requests
        assert [r for r in records if r.http_status == 429] == []
        times = sorted(r.at for r in records if r.endpoint in INITS and r.http_status == 200)
        assert len(times) == 20
        for index in range(len(times) - 6):
            assert times[index + 6] - times[index] >= 60, "more than 6 inits inside one minute"


def test_the_pending_draft_cap_is_a_wait_and_the_queue_resumes_a_day_later(tmp_path):
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          pending_share_cap=2) as emulator:
        rig = Rig(tmp_path / "rig", emulator)
        sources = make_videos(tmp_path / "src", 4)
        rig.start()
        for path in sources:
            rig.drop("alice", path.name, path)
        wait_for(lambda: len(done_names(rig)) == 2, 20, what="two drafts sent")
        # The account's wait is recorded a moment before the refused item is parked: wait for both.
        data = wait_for(lambda: (found := _waiting(rig)) and found["accounts"][0]["uploading"] == 0 and found, 10,
                        what="the account waiting and its refused item parked")
        account = data["accounts"][0]
        assert "5 pending drafts" in account["note"] and "next try" in account["note"]
        assert account["waiting"] + account["queued"] == 2
        assert account["sent_24h"] == 2 and "drafts sent in 24 h: 2" in account["budget_text"]
        assert "5 pending drafts" in status.render(data)
        assert sorted(os.listdir(rig.folder("alice", "inbox"))) == sorted(p.name for p in sources[2:])
        assert os.listdir(rig.folder("alice", "failed")) == []
        emulator.clock.advance(24 * 3600 + 60)
        wait_for(lambda: len(done_names(rig)) == 4, 30, what="all four drafts after a day")
        assert os.listdir(rig.folder("alice", "failed")) == []


def _waiting(rig: Rig):
    """Status once the account waits and the refused item is parked (the account's wait is recorded a
    moment before the item leaves ``uploading``)."""
    data = report.collect(rig.settings, rig.emulator.clock.now())
    accounts = data["accounts"]
    return data if accounts and accounts[0]["note"].startswith("waiting") and accounts[0]["uploading"] == 0 else None


def test_a_capped_account_does_not_hold_up_another(tmp_path):
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          pending_share_cap=1) as emulator:
        rig = Rig(tmp_path / "rig", emulator, accounts={"alice": {"mode": "inbox"}, "bob": {"mode": "inbox"}})
        alice = make_videos(tmp_path / "a", 3, "alice")
        bob = make_videos(tmp_path / "b", 1, "bob")
        rig.start()
        for path in alice:
            rig.drop("alice", path.name, path)
        wait_for(lambda: _waiting(rig), 20, what="alice capped")
        # Bob has his own cap: one draft goes through while alice waits.
        for path in bob:
            rig.drop("bob", path.name, path)
        wait_for(lambda: len(done_names(rig, "bob")) == 1, 20, what="bob's file done while alice waits")
        assert len(done_names(rig, "alice")) == 1


def test_transient_faults_everywhere_still_end_in_done_with_one_successful_init_each(make_rig, tmp_path):
    rig = make_rig(overrides={"upload.chunk_size": 5_242_880, "upload.max_attempts": 8})
    emulator = rig.emulator
    sources = make_videos(tmp_path / "src", 3, size=60_000)
    sources.append(make_videos(tmp_path / "big", 1, "big", size=11_000_000)[0])
    emulator.faults.fail_next("inbox_init", n=1, kind="5xx")
    emulator.faults.fail_next("inbox_init", n=1, kind="drop")
    emulator.faults.fail_next("inbox_init", n=1, kind="429")
    emulator.faults.fail_next("upload", n=1, kind="5xx")
    emulator.faults.fail_next("upload", n=1, kind="drop")
    emulator.faults.fail_next("status", n=1, kind="5xx")
    emulator.faults.fail_next("status", n=1, kind="drop")
    emulator.faults.fail_next("status", n=1, kind="429")
    rig.start()
    for path in sources:
        rig.drop("alice", path.name, path)
    deadline = time.monotonic() + 60
    while len(done_names(rig)) < 4 and time.monotonic() < deadline:
        time.sleep(1)
        emulator.clock.advance(70)   # 429s park an item for a minute
    assert len(done_names(rig)) == 4
    assert os.listdir(rig.folder("alice", "failed")) == []
    for name in done_names(rig):
        digest = rig.sidecar("alice", name)["sha256"]
        assert emulator.records.completed(digest) == 1, f"{name} completed more than once"
    assert not any(emulator.faults.pending().values()), "every injected fault was met"


def test_a_waiting_file_taken_out_is_cancelled_and_retry_puts_a_failed_one_back(tmp_path, capsys):
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          pending_share_cap=1) as emulator:
        rig = Rig(tmp_path / "rig", emulator)
        first, second = make_videos(tmp_path / "src", 2)
        rig.start()
        rig.drop("alice", first.name, first)
        rig.wait_sidecar("alice", first.name)
        rig.drop("alice", second.name, second)
        wait_for(lambda: _waiting(rig), 20, what="the second file waiting on the cap")
        inits_before = len([r for r in emulator.records.requests if r.endpoint in INITS])
        (rig.folder("alice", "inbox") / second.name).rename(tmp_path / "taken-out.mp4")

        def cancelled() -> bool:
            data = report.collect(rig.settings, emulator.clock.now())
            return not [i for i in data["items"] if i["name"] == second.name and i["state"] != "cancelled"]

        wait_for(cancelled, 10, what="the taken-out file no longer listed")
        emulator.clock.advance(2 * 3600)
        time.sleep(1.5)
        inits_after = [r for r in emulator.records.requests if r.endpoint in INITS]
        assert len(inits_after) == inits_before, "a file taken out of inbox/ was still sent"
        rig.stop()

    # A file that failed for a reason the user fixed goes through after `watchfolder retry`.
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False) as emulator:
        rig = Rig(tmp_path / "rig2", emulator)
        emulator.faults.fail_next_publish("file_format_check_failed")
        clip = make_videos(tmp_path / "src2", 1, "again")[0]
        rig.start()
        rig.drop("alice", clip.name, clip)
        failed = rig.wait_sidecar("alice", clip.name, "failed")
        assert failed["error"]["code"] == "file_format_check_failed"
        # The sidecar is written a moment before the move is recorded; retry goes by the record.
        wait_for(lambda: [i for i in report.collect(rig.settings, emulator.clock.now())["items"]
                          if i["name"] == clip.name and i["folder"] == "failed"], 10,
                 what="the move to failed/ recorded")
        assert retry.main(rig.settings, clip.name) == 0
        assert "inbox" in capsys.readouterr().out
        sidecar = rig.wait_sidecar("alice", clip.name, "done")
        assert sidecar["result"] == "done"
        assert not (rig.folder("alice", "failed") / clip.name).exists()


@pytest.mark.parametrize("ref_kind", ["id", "name"])
def test_retry_refuses_what_is_not_a_failed_item(make_rig, ref_kind, capsys):
    rig = make_rig()
    rig.start()
    rig.stop()
    from watchfolder.core.errors import UsageError

    with pytest.raises(UsageError):
        retry.main(rig.settings, "999" if ref_kind == "id" else "nothing.mp4")
