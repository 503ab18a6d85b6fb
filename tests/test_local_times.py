"""Times a person writes and reads are local: publish_at without an offset in the configured zone (a skipped
and a repeated hour handled as documented), and status shows local times with the zone."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from tests.harness import Rig, wait_for
from watchfolder import zones
from watchfolder.commands import status
from watchfolder.config import post as postsettings
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError, MediaError
from watchfolder.core.model import Kind, Mode
from watchfolder.media import samples
from watchfolder.ops import report

BERLIN = zones.named("Europe/Berlin")
UTC = datetime.UTC


def publish_at(value: object, zone: datetime.tzinfo = BERLIN) -> datetime.datetime:
    post = postsettings.resolve({}, {"publish_at": value}, kind=Kind.VIDEO, mode=Mode.INBOX, source_name="clip.yaml",
                                zone=zone)
    assert post.publish_at is not None
    return post.publish_at


def test_a_wall_clock_time_is_read_in_the_zone():
    assert publish_at("2026-12-01 18:00") == datetime.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # CET
    assert publish_at("2026-07-01T18:00") == datetime.datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # CEST
    assert publish_at(datetime.datetime(2026, 12, 1, 18, 0)) == datetime.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def test_an_offset_still_wins_over_the_zone():
    assert publish_at("2026-12-01T18:00:00+05:00") == datetime.datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    assert publish_at("2026-12-01T18:00:00Z") == datetime.datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def test_a_time_in_the_skipped_hour_lands_as_far_after_the_change():
    # 2027-03-28: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist and is read as 03:30 CEST.
    moment = publish_at("2027-03-28 02:30")
    assert moment == datetime.datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert moment.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_a_time_in_the_repeated_hour_is_the_first_one():
    # 2026-10-25: Berlin falls back from 03:00 CEST to 02:00 CET; 02:30 happens twice, the first (CEST) counts.
    moment = publish_at("2026-10-25 02:30")
    assert moment == datetime.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert moment.astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CEST"


def test_a_date_without_a_time_is_still_refused():
    with pytest.raises(MediaError, match="a date without a time"):
        publish_at(datetime.date(2026, 12, 1))


def test_the_zone_comes_from_the_config_then_tz_then_the_system(tmp_path: Path):
    assert zones.resolve("Asia/Tokyo", {"TZ": "Europe/Berlin"}) == zones.named("Asia/Tokyo")
    assert zones.resolve(None, {"TZ": ":Europe/Berlin"}) == BERLIN
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/America/New_York")
    assert zones.resolve(None, {}, localtime=link) == zones.named("America/New_York")
    assert zones.resolve(None, {}, localtime=tmp_path / "absent") == UTC


def test_an_unknown_zone_in_the_config_names_the_key(tmp_path: Path):
    (tmp_path / "media").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text("root: media\nstate_dir: state\ntimezone: Mars/Olympus\ntiktok:\n  client_key: k\n"
                    "accounts:\n  alice: {}\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path, {})
    assert any("timezone" in p and "Mars/Olympus" in p for p in caught.value.problems)


def test_shown_times_carry_the_zone():
    winter = datetime.datetime(2027, 1, 15, 17, 0, tzinfo=UTC).timestamp()
    assert zones.shown(winter, BERLIN) == "2027-01-15 18:00 CET"
    assert zones.shown(winter, zones.named("America/Sao_Paulo")) == "2027-01-15 14:00 -03:00"


def test_status_shows_a_scheduled_item_in_local_time_with_its_zone(emulator, tmp_path, capsys):
    rig = Rig(tmp_path / "rig", emulator, overrides={"timezone": "Europe/Berlin"})
    try:
        rig.start()
        inbox = rig.folder("alice", "inbox")
        (inbox / "clip.yaml").write_text('publish_at: "2030-01-15 18:00"\n')
        samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
        rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")

        def scheduled() -> list[dict[str, object]]:
            data = report.collect(rig.settings, emulator.clock.now())
            return [row for row in data["items"] if row["wait_reason"] == "publish_at"]

        [row] = wait_for(scheduled, 20, what="the item waits for publish_at")
        assert row["publish_at"] == "2030-01-15T17:00:00Z"  # JSON keeps UTC
        assert status.main(rig.settings, now=emulator.clock.now()) == 0
        assert "scheduled for 2030-01-15 18:00 CET" in capsys.readouterr().out
    finally:
        rig.stop()
