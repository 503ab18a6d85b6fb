"""status during an upload: bytes sent of the total, speed and time left (JSON too); time in processing;
--watch redraws."""

from __future__ import annotations

import io
import json

from tests.harness import Rig, wait_for
from watchfolder import cli
from watchfolder.commands import status
from watchfolder.core.model import State
from watchfolder.media import samples
from watchfolder.ops import progress, report

CHUNK = 5_242_880


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_json_carries_speed_and_time_left_during_a_slowed_upload(emulator, tmp_path, capsys):
    rig = Rig(tmp_path / "rig", emulator, overrides={"upload.chunk_size": CHUNK})
    size = 3 * CHUNK + 1000
    emulator.faults.fail_next("upload", n=4, kind="slow", delay=1.5)  # every chunk takes 1.5 s to answer
    try:
        rig.start()
        samples.write_mp4(tmp_path / "big.mp4", size=size)
        rig.drop("alice", "big.mp4", tmp_path / "big.mp4")

        def uploading_row() -> dict | None:
            rows = report.collect(rig.settings, emulator.clock.now())["items"]
            return next((r for r in rows if r["state"] == "uploading" and r["bytes_sent"] > 0), None)

        wait_for(uploading_row, 30, what="an acknowledged chunk")
        assert cli.main(["status", "--json", "-c", str(rig.config_path)]) == 0
        [row] = [r for r in json.loads(capsys.readouterr().out)["items"] if r["name"] == "big.mp4"]
        assert row["state"] == "uploading", row
        assert row["bytes_total"] == size and row["bytes_sent"] in (CHUNK, 2 * CHUNK, 3 * CHUNK)
        # About one chunk per 1.5 s: between 1 and 10 MB/s however loaded the machine is.
        assert 300_000 < row["speed_bytes_per_second"] < 10_000_000, row
        assert 0 < row["eta_seconds"] < 60 and row["eta_at"].endswith("Z")
        assert cli.main(["status", "-c", str(rig.config_path)]) == 0
        line = next(line for line in capsys.readouterr().out.splitlines() if "big.mp4" in line)
        assert " of 15.7 MB" in line and "MB/s, about" in line and "left" in line
        rig.wait_sidecar("alice", "big.mp4")
    finally:
        rig.stop()


def test_processing_shows_how_long_it_has_waited(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator)
    emulator.config.processing_seconds = 3600  # TikTok takes an hour to process
    try:
        rig.start()
        samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
        rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")

        def processing() -> dict | None:
            rows = report.collect(rig.settings, emulator.clock.now() + 75)["items"]
            return next((r for r in rows if r["state"] == str(State.PROCESSING)), None)

        row = wait_for(processing, 20, what="the item in processing")
        assert 70 <= row["state_seconds"] <= 80 and row["bytes_sent"] == row["bytes_total"] == 200_000
        assert "waiting 1 min" in row["summary"]
    finally:
        rig.stop()


def test_watch_redraws_on_a_terminal_and_streams_json_elsewhere(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator)
    try:
        rig.start()
        screen = FakeTTY()
        assert status.main(rig.settings, watch=True, out=screen, rounds=2, interval=0.05) == 0
        assert screen.getvalue().count(status.CLEAR) == 2 and "Ctrl-C to stop" in screen.getvalue()
        lines = io.StringIO()
        assert status.main(rig.settings, as_json=True, watch=True, out=lines, rounds=2, interval=0.05) == 0
        documents = [json.loads(line) for line in lines.getvalue().splitlines()]
        assert len(documents) == 2 and all("accounts" in d for d in documents)
        assert status.CLEAR not in lines.getvalue()
    finally:
        rig.stop()


def test_people_read_sizes_and_durations():
    assert [progress.size(n) for n in (999, 1500, 15_729_640, 2_500_000_000)] == ["999 B", "1.5 kB", "15.7 MB",
                                                                                   "2.5 GB"]
    assert [progress.duration(s) for s in (5, 75, 120, 4000)] == ["5 s", "1 min 15 s", "2 min", "1 h 6 min"]
