"""What `auth import` reads: TikTok's token JSON, or ``key=value`` lines, from stdin or a file.

Tokens given as command-line arguments can be read by every local user (``ps``, ``/proc/PID/cmdline``)
while the command runs, and stay in the shell's history; piped in, they are seen by no one else.
Error messages name the key or line that is wrong and never quote a value.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from watchfolder.core.errors import UsageError

MAX_INPUT = 64 * 1024   # characters read: a token answer is well under 2 KiB
KEYS = ("access_token", "refresh_token", "open_id", "expires_in", "refresh_expires_in", "scope")
HOW = ("pipe in TikTok's token JSON, or lines such as access_token=… and refresh_token=… (open_id, scope, "
       "expires_in and refresh_expires_in optional)")


@dataclasses.dataclass(frozen=True)
class TokenInput:
    """The values found in the input; None where the input did not say."""

    access_token: str
    refresh_token: str
    open_id: str | None = None
    scopes: tuple[str, ...] | None = None
    expires_in: float | None = None
    refresh_expires_in: float | None = None

    def __repr__(self) -> str:
        return f"TokenInput(open_id={self.open_id!r}, scopes={self.scopes!r}, access_token='***', refresh_token='***')"


def parse(text: str) -> TokenInput:
    """Given the input's text, return the tokens in it; raise UsageError saying what is missing or wrong."""
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"no tokens in the input: {HOW}")
    values = _from_json(stripped) if stripped[0] in "{[" else _from_lines(stripped)
    for key in ("access_token", "refresh_token"):
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"no {key} in the input: {HOW}")
    open_id = values.get("open_id")
    if open_id is not None and not isinstance(open_id, str):
        raise UsageError("open_id must be text")
    scope = values.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise UsageError("scope must be text such as video.upload,user.info.basic")
    return TokenInput(
        access_token=str(values["access_token"]).strip(), refresh_token=str(values["refresh_token"]).strip(),
        open_id=open_id.strip() if isinstance(open_id, str) else None,
        scopes=split_scopes(scope) if isinstance(scope, str) else None,
        expires_in=_seconds(values, "expires_in"), refresh_expires_in=_seconds(values, "refresh_expires_in"))


def split_scopes(text: str) -> tuple[str, ...]:
    """``"a,b c"`` → ``("a", "b", "c")``: TikTok separates scopes with commas, people with spaces too."""
    return tuple(scope for scope in text.replace(" ", ",").split(",") if scope)


def _from_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise UsageError(f"the input is not valid JSON: {HOW}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]   # the answer as some tools save it, wrapped in "data"
    if not isinstance(data, dict):
        raise UsageError(f"the input is not TikTok's token JSON (an object with access_token and refresh_token): "
                         f"{HOW}")
    return data


def _from_lines(text: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not equals or not key:
            raise UsageError(f"line {number} is not key=value: {HOW}")
        if key not in KEYS:
            raise UsageError(f"line {number}: unknown key {key[:40]!r}; known: {', '.join(KEYS)}")
        values[key] = value.strip()
    return values


def _seconds(values: dict[str, Any], key: str) -> float | None:
    value = values.get(key)
    if value is None:
        return None
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{key} must be a number of seconds above 0")
    return seconds
