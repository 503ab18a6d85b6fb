"""Config value converters: each takes a raw YAML value and returns the typed one or raises ValueError.

The message of the ValueError says what was expected and shows the value (never for the secret).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from watchfolder import zones


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_duration(value: object) -> float:
    """Given 10, 10.5, "10", "10s", "5m", "2h" or "1d", return seconds; raise ValueError otherwise."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if match:
            seconds = float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f'must be a duration like 10, "10s" or "5m", got {show(value)}')
    return seconds


def parse_listen(value: str) -> tuple[str, int]:
    """Given "HOST:PORT", ":PORT" (host 127.0.0.1) or "[v6]:PORT", return (host, port); raise ValueError."""
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]*):(\d{1,5})", value) if isinstance(value, str) else None
    if not match or int(match[2]) > 65535:
        raise ValueError(f"must be HOST:PORT like 127.0.0.1:9808 (or [::1]:9808), got {show(value)}")
    return match[1].strip("[]") or "127.0.0.1", int(match[2])


Converter = Callable[[object], Any]


def text(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError(f"must be non-empty text, got {show(value)}")


def secret_text(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError("must be non-empty text (quote it)")  # the value itself is never shown


def flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false, got {show(value)}")


def whole(low: int, high: int | None = None, what: str = "a whole number") -> Converter:
    def convert(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high):
            return value
        span = f"from {low:,} to {high:,}" if high is not None else f"{low} or more"
        raise ValueError(f"must be {what} {span}, got {show(value)}")

    return convert


def rate(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"must be calls per minute, a whole number (0 means no limit), got {show(value)}")


def seconds(allow_zero: bool = False) -> Converter:
    def convert(value: object) -> float:
        seconds = parse_duration(value)
        if seconds == 0 and not allow_zero:
            raise ValueError("must be more than 0 seconds, got 0")
        return seconds

    return convert


def days(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf:
        return float(value)
    raise ValueError(f"must be a number of days, 0 or more, got {show(value)}")


def choice(*options: str) -> Converter:
    def convert(value: object) -> str:
        if value in options:
            return str(value)
        raise ValueError(f"must be one of {', '.join(options)}, got {show(value)}")

    return convert


def url(value: object) -> str:
    if isinstance(value, str) and re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
        return value
    raise ValueError(f"must be a URL starting with http:// or https://, got {show(value)}")


def url_prefix(value: object) -> str:
    prefix = url(value)
    if not prefix.endswith("/"):
        raise ValueError(f'must end with "/" (names are appended to it), got {show(value)}')
    return prefix


def listen(value: object) -> tuple[str, int]:
    return parse_listen(cast(str, value))  # parse_listen refuses a non-string itself


def globs(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise ValueError(f'must be a list of file-name patterns like ["*.bak"], got {show(value)}')


def path(base: Path) -> Converter:
    def convert(value: object) -> Path:
        # Relative paths follow the config file, not the daemon's working folder (systemd uses /).
        return Path(os.path.normpath(base / Path(text(value)).expanduser()))

    return convert


def zone_name(value: object) -> str:
    """An IANA time zone name ("Europe/Berlin"); ValueError says what is expected."""
    name = text(value).strip()
    zones.named(name)  # raises ValueError naming it
    return name


def subset_of(*options: str) -> Converter:
    """A list drawn from ``options`` (an empty list is allowed: none of them)."""
    def convert(value: object) -> tuple[str, ...]:
        if isinstance(value, list) and all(item in options for item in value):
            return tuple(str(item) for item in value)
        raise ValueError(f"must be a list of some of {', '.join(options)}, got {show(value)}")

    return convert


def number(low: float, what: str) -> Converter:
    """A positive number of ``what`` (frames per second, …), at least ``low``."""
    def convert(value: object) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and low <= value < math.inf:
            return float(value)
        raise ValueError(f"must be {what}, a number from {low:g} up, got {show(value)}")

    return convert


def names(*options: str) -> Converter:
    """A non-empty list taken from ``options`` (e.g. video codecs)."""
    def convert(value: object) -> tuple[str, ...]:
        if isinstance(value, list) and value and all(isinstance(v, str) and v.lower() in options for v in value):
            return tuple(v.lower() for v in value)
        raise ValueError(f"must be a list of some of {', '.join(options)}, got {show(value)}")

    return convert
