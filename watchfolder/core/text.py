"""How times and names are shown: one place for the formats every layer prints (pure, no I/O)."""

from __future__ import annotations

import datetime
import reprlib
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


def short(value: object, limit: int = 60) -> str:
    """Given any value, return its ``repr`` cut to about ``limit`` characters (``reprlib``-style), so a
    message quoting a hostile value (a 60 KiB title, a nested structure) stays one short line.
    Long strings keep their start and end; containers show their first few members."""
    shaper = reprlib.Repr()  # attributes, not arguments: Python 3.11's Repr takes none
    shaper.maxlevel, shaper.maxstring, shaper.maxlong, shaper.maxother = 2, limit, limit, limit
    shaper.maxtuple = shaper.maxlist = shaper.maxdict = shaper.maxset = shaper.maxfrozenset = 4
    text = shaper.repr(value)
    return printable(bounded(text, 2 * limit))


def bounded(text: str, limit: int) -> str:
    """Given text, return it whole when it has at most ``limit`` characters, else its start and a count
    of what was left out ("… (12,345 more characters)")."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def printable(text: str) -> str:
    """Given text that may hold surrogate escapes (bytes of a name that were not UTF-8), return text that
    encodes as UTF-8, those bytes shown as ``\\xNN``; valid text is returned as it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").encode(
            "utf-8", "backslashreplace").decode("utf-8")
    return text
