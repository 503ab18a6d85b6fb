"""Upload progress for people: bytes sent of the total, the speed, the time left, and how long TikTok has been
processing. Computed from what the store holds (the bytes TikTok acknowledged, when the item entered its
state, when the last chunk was acknowledged), so ``status`` in another process sees the same figures."""

from __future__ import annotations

from typing import Any

from watchfolder.core.model import Item, State
from watchfolder.core.text import iso


def figures(item: Item, entered: float | None, now: float) -> dict[str, Any]:
    """Given an item, when it entered its current state (None: unknown) and now, return the status fields:
    ``bytes_sent``, ``bytes_total``, ``speed_bytes_per_second`` and ``eta_seconds``/``eta_at`` (uploads with
    at least one chunk acknowledged, else None), ``state_seconds`` (time in the current state)."""
    speed = eta = None
    if item.state is State.UPLOADING and entered is not None and item.uploaded_bytes > 0:
        elapsed = item.updated_at - entered  # up to the last acknowledged chunk
        if elapsed > 0:
            speed = item.uploaded_bytes / elapsed
            left = max(0, item.size - item.uploaded_bytes)
            eta = max(0.0, left / speed - max(0.0, now - item.updated_at))
    return {
        "bytes_sent": item.uploaded_bytes,
        "bytes_total": item.size,
        "speed_bytes_per_second": round(speed) if speed is not None else None,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "eta_at": iso(now + eta) if eta is not None else None,
        "state_seconds": round(now - entered, 1) if entered is not None else None,
    }


def size(count: float) -> str:
    """1234567 → "1.2 MB" (decimal units, as file managers show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def duration(seconds: float) -> str:
    """75 → "1 min 15 s"; 4000 → "1 h 7 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def summary(item: Item, row: dict[str, Any]) -> str:
    """The words status adds after an uploading or processing item's state (empty for others)."""
    if item.state is State.UPLOADING and item.size:
        text = f"{size(row['bytes_sent'])} of {size(item.size)}"
        if row["speed_bytes_per_second"]:
            text += f", {size(row['speed_bytes_per_second'])}/s, about {duration(row['eta_seconds'])} left"
        return text
    if item.state is State.PROCESSING and row["state_seconds"] is not None:
        return f"waiting {duration(row['state_seconds'])} so far"
    return ""
