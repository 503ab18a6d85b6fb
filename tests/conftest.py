"""Shared fixtures: the emulator as a real HTTP server, and a daemon rig on real folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig
from watchfolder import logs
from watchfolder.emulator.clock import OffsetClock


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Tests log at warning level as JSON lines, so a failing test shows the daemon's own words."""
    logs.configure("warning", json=True)
    yield


@pytest.fixture
def emulator() -> Iterator[Any]:
    """The emulator on real time plus an offset the test may advance; the daemon reads the same clock."""
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False) as emu:
        yield emu


@pytest.fixture
def make_rig(tmp_path: Path, emulator: Any) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def factory(**options: Any) -> Rig:
        rig = Rig(tmp_path / f"rig{len(rigs)}", emulator, **options)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        rig.stop()
