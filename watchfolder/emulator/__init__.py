"""A strict local TikTok Content Posting API for tests, the demo and benchmarks.

It shares no code with ``watchfolder.tiktok`` on purpose: the client and the thing that judges it must
not share a bug. See docs/emulator.md for what it emulates and the options for undocumented behaviour.
"""

from __future__ import annotations

from watchfolder.emulator.accounts import User
from watchfolder.emulator.clock import Clock, ManualClock, OffsetClock
from watchfolder.emulator.config import EmulatorConfig, EmulatorConfigError, load_config
from watchfolder.emulator.core import Emulator
from watchfolder.emulator.records import PublishRecord, RefreshRecord, RequestRecord

__all__ = [
    "Clock",
    "Emulator",
    "EmulatorConfig",
    "EmulatorConfigError",
    "ManualClock",
    "OffsetClock",
    "PublishRecord",
    "RefreshRecord",
    "RequestRecord",
    "User",
    "load_config",
]
