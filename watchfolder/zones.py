"""Local time for people: which zone (``timezone:`` in the config, else ``$TZ``, else the system's), how an
instant is shown in it, and how a wall-clock time a person wrote becomes an instant (pure, no I/O but the
zone database and /etc/localtime).

A wall-clock time that does not exist (the hour skipped when clocks spring forward) is read with the
offset in force before the change, so it lands as far after the change as it was written after its start:
``02:30`` on a night that jumps from 02:00 to 03:00 is ``03:30`` summer time. A time that happens twice
(the hour repeated when clocks fall back) is the first one, still on summer time.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = datetime.UTC


def named(name: str) -> ZoneInfo:
    """Given an IANA zone name ("Europe/Berlin"), return the zone; raise ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not a time zone name like Europe/Berlin or America/New_York") from None


def _system_name(localtime: Path) -> str | None:
    try:
        target = os.path.realpath(localtime)
    except OSError:
        return None
    marker = "/zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def resolve(configured: str | None, env: Mapping[str, str] | None = None,
            localtime: Path = Path("/etc/localtime")) -> datetime.tzinfo:
    """The zone for people: ``configured`` (the config's ``timezone:``), else ``$TZ`` when it names a zone,
    else the system's (/etc/localtime), else UTC."""
    if configured:
        return named(configured)
    env = os.environ if env is None else env
    for candidate in (env.get("TZ", "").removeprefix(":").strip(), _system_name(localtime)):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return UTC


def shown(epoch: float | None, zone: datetime.tzinfo, *, seconds: bool = False) -> str:
    """Epoch seconds → ``2026-12-03 18:00 CET`` in ``zone`` (the zone's abbreviation, else its offset)."""
    if epoch is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(epoch, zone)
    label = moment.tzname() or moment.strftime("%z")
    if label.startswith(("+", "-")):  # zones without a letter abbreviation: show the offset as +03:00
        label = moment.isoformat()[-6:]
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {label}"


def iso_local(epoch: float, zone: datetime.tzinfo) -> str:
    """Epoch seconds → ISO-8601 in ``zone`` with its offset, to the millisecond: ``2026-12-03T18:00:00.123+01:00``."""
    return datetime.datetime.fromtimestamp(epoch, zone).isoformat(timespec="milliseconds")


def wall_clock(naive: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    """A wall-clock time written without an offset, in ``zone``, as an aware UTC datetime (gap and fold as
    the module says)."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
