"""The user in charge of an account: pause and resume, and TikTok's caps planned from the ledger, with every
held item saying why in status --json."""

from __future__ import annotations

import datetime
import time

from tests.emulator_fixture import running_emulator
from tests.harness import Rig, wait_for
from tests.test_scheduler import INITS, done_names, make_videos
from watchfolder import cli
from watchfolder.emulator.clock import OffsetClock
from watchfolder.ops import report


def _items(rig: Rig, state: str | None = None) -> list[dict]:
    data = report.collect(rig.settings, rig.emulator.clock.now())
    return [item for item in data["items"] if state is None or item["state"] == state]


def _inits(emulator) -> list:
    return [r for r in emulator.records.requests if r.endpoint in INITS]


def _run(*argv: str) -> int:
    return cli.main(list(argv))


def test_pause_holds_a_new_drop_saying_paused_by_you_across_a_restart_and_resume_lets_it_go(make_rig, tmp_path,
                                                                                          capsys):
    rig: Rig = make_rig()
    config = str(rig.config_path)
    assert _run("pause", "alice", "-c", config) == 0
    rig.start()
    (source,) = make_videos(tmp_path / "src", 1)
    rig.drop("alice", source.name, source)

    def held() -> list[dict]:
        items = _items(rig)
        return items if items and all(i["wait_reason"] == "paused_by_you" for i in items) else []

    (item,) = wait_for(held, 10, what="the drop held by the pause")
    assert "paused by you" in item["detail"] and "paused by you" in item["summary"]
    assert report.collect(rig.settings, rig.emulator.clock.now())["accounts"][0]["note"].startswith("paused by you")
    rig.stop()
    rig.start()
    time.sleep(2)
    assert _inits(rig.emulator) == [], "a paused account sent an init"
    assert [i["wait_reason"] for i in _items(rig)] == ["paused_by_you"]
    started = time.monotonic()
    assert _run("resume", "alice", "-c", config) == 0
    rig.wait_sidecar("alice", source.name, timeout=15)
    assert time.monotonic() - started < 10
    assert "resumed" in capsys.readouterr().out


def test_pause_names_an_unknown_account_and_exits_2(make_rig, capsys):
    rig: Rig = make_rig()
    assert _run("pause", "nobody", "-c", str(rig.config_path)) == 2
    assert "nobody" in capsys.readouterr().err


def test_at_the_pending_cap_the_sixth_init_is_never_sent_held_items_say_why_and_resume_sends_the_rest(tmp_path):
    with running_emulator(clock=OffsetClock(), pending_share_cap=5, init_per_minute=100) as emulator:
        rig = Rig(tmp_path / "rig", emulator)
        sources = make_videos(tmp_path / "src", 7)
        rig.start()
        for path in sources:
            rig.drop("alice", path.name, path)
        wait_for(lambda: len(done_names(rig)) == 5, 30, what="five drafts sent")

        def held() -> list[dict]:
            items = [i for i in _items(rig) if i["state"] in ("queued", "waiting")]
            return items if len(items) == 2 and all(i["wait_reason"] == "pending_share" for i in items) else []

        items = wait_for(held, 10, what="the two others held by the cap")
        first_sent = min(r.at for r in _inits(emulator))
        for item in items:
            assert item["next_attempt_at"] and "5 pending drafts" in item["detail"]
            when = datetime.datetime.fromisoformat(item["next_attempt_at"].replace("Z", "+00:00")).timestamp()
            assert abs(when - (first_sent + 86400)) < 5, "the next try is when the oldest draft is a day old"
        time.sleep(1.5)
        assert len(_inits(emulator)) == 5, "the sixth init was sent while the ledger said the cap was full"
        assert not [r for r in emulator.records.requests if r.http_status == 403]
        emulator.config.pending_share_cap = 100   # the creator posted the drafts in the app
        started = time.monotonic()
        assert _run("resume", "alice", "-c", str(rig.config_path)) == 0
        wait_for(lambda: len(done_names(rig)) == 7, 15, what="the rest through after resume")
        assert time.monotonic() - started < 10
        rig.stop()
