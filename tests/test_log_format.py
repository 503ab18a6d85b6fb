"""log_format (auto, json, console), the journald priority prefix, and log times in the configured zone."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog

from tests.harness import Rig, wait_for
from watchfolder import logs

SCRIPT = Path(sys.executable).parent / "watchfolder"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    if logs._stdlib_handler is not None:
        logging.getLogger().removeHandler(logs._stdlib_handler)
        logs._stdlib_handler = None
    logging.getLogger().setLevel(logging.WARNING)


@pytest.mark.parametrize(("stream", "json_wanted", "is_json"), [
    (FakeTTY(), None, False), (io.StringIO(), None, True),  # auto
    (FakeTTY(), True, True), (io.StringIO(), False, False),  # json on a terminal; console into a file
])
def test_the_format_follows_log_format(stream, json_wanted, is_json):
    logs.configure("info", json=json_wanted, stream=stream)
    logs.get_logger(account="alice").info("item_queued", item="clip.mp4")
    line = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue().splitlines()[0])  # colours on a terminal
    if is_json:
        assert json.loads(line)["event"] == "item_queued"
    else:
        assert "item_queued" in line and "account=alice" in line and not line.startswith("{")


def test_times_carry_the_configured_zone_and_its_offset():
    stream = io.StringIO()
    logs.configure("info", stream=stream, zone=ZoneInfo("Asia/Kolkata"))
    logs.get_logger().info("hello")
    assert json.loads(stream.getvalue())["timestamp"].endswith("+05:30")
    console = io.StringIO()
    logs.configure("info", json=False, stream=console, zone=ZoneInfo("Asia/Kolkata"))
    logs.get_logger().info("hello")
    assert "+05:30" in console.getvalue()


def test_under_journald_every_line_starts_with_its_priority(tmp_path, monkeypatch):
    with open(tmp_path / "journal", "w", encoding="utf-8") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        logs.configure("debug", stream=stream)
        log = logs.get_logger()
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        logging.getLogger("urllib3").warning("a library speaks")
    lines = (tmp_path / "journal").read_text().splitlines()
    assert [line[:4] for line in lines] == ["<7>{", "<6>{", "<4>{", "<3>{", "<4>{"]
    assert json.loads(lines[2][3:])["event"] == "w"


def test_journal_stream_must_name_this_very_stream(tmp_path):
    with open(tmp_path / "a", "w") as first, open(tmp_path / "b", "w") as second:
        info = os.fstat(first.fileno())
        env = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert logs.journal_stream(first, env) and not logs.journal_stream(second, env)
        assert not logs.journal_stream(first, {}) and not logs.journal_stream(first, {"JOURNAL_STREAM": "junk"})


def test_the_daemon_logs_with_priorities_under_journald_in_the_configured_zone(emulator, tmp_path):
    rig = Rig(tmp_path / "rig", emulator, overrides={"timezone": "Asia/Kolkata", "log_format": "auto"})
    log_path = tmp_path / "journal.log"
    with open(log_path, "w", encoding="utf-8") as journal:
        info = os.fstat(journal.fileno())
        env = {**os.environ, **rig.env, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        process = subprocess.Popen([str(SCRIPT), "run", "-c", str(rig.config_path)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=journal)
        try:
            wait_for(lambda: "daemon_ready" in log_path.read_text(encoding="utf-8"), 20, what="daemon_ready")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line]
    assert lines and all(line[0] == "<" and line[2:4] == ">{" for line in lines), lines[:3]
    started = next(json.loads(line[3:]) for line in lines if "daemon_ready" in line)
    assert started["timestamp"].endswith("+05:30")
