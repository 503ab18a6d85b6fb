"""How times and names are shown: one place for the formats every layer prints (pure, no I/O)."""

from __future__ import annotations

import datetime
import unicodedata


def iso(epoch: float | None) -> str | None:
    """Epoch seconds → ``2026-11-26T10:00:00Z`` (UTC); None stays None."""
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def display_name(name: str) -> str:
    """Given a name from the filesystem, return a readable form for logs, status and sidecars.

    NFC-normalised (macOS NFD names read the same as others); bytes that were not UTF-8 are shown as
    ``\\xNN``; control characters (a newline in a file name) are shown escaped so they cannot break
    a log line.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from fsdecode
        raw = name.encode("utf-8", "backslashreplace")
    text = unicodedata.normalize("NFC", raw.decode("utf-8", "backslashreplace"))
    return "".join(_escape_control(char) for char in text)


def _escape_control(char: str) -> str:
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    return char
