"""``watchfolder status [--json]``: what is queued, waiting (why, until when), uploading, and finished today."""

from __future__ import annotations

import json
import time
from typing import Any

from watchfolder.config.settings import Settings
from watchfolder.ops.report import collect


def render(data: dict[str, Any]) -> str:
    lines = []
    if data.get("message"):
        return str(data["message"])
    daemon = data["daemon"]
    if daemon is None or not daemon["running"]:
        lines.append("daemon: not running" + (f" (last seen {daemon['heartbeat']})" if daemon else ""))
    else:
        lines.append(f"daemon: running (pid {daemon['pid']})")
        for obs in daemon["observers"]:
            if not obs["available"]:   # the message says "unavailable: why"
                lines.append(f"  inbox of {obs['account']}: {obs['message']}")
            elif not obs["alive"]:
                lines.append(f"  inbox of {obs['account']}: not watched right now: {obs['message']}")
    for acc in data["accounts"]:
        lines.append(f"{acc['account']} ({acc['mode']}): {acc['queued']} queued, {acc['waiting']} waiting, "
                     f"{acc['uploading']} uploading, {acc['processing']} processing, {acc['done_today']} done and "
                     f"{acc['failed_today']} failed today; {acc['budget_text']} — {acc['note']}")
    if data["items"]:
        lines.append("")
        lines.append(f"{'ID':>5}  {'ACCOUNT':<12} {'STATE':<10} {'NAME':<40} WHAT")
        for row in data["items"]:
            lines.append(f"{row['id']:>5}  {row['account']:<12} {row['state']:<10} {row['name'][:40]:<40} "
                         f"{row['summary']}" + (f" ({row['detail']})" if row["detail"] and row["state"] != "failed"
                                                 else ""))
    for notice in data["notices"]:
        lines.append(f"       {notice['account']:<12} {'inbox':<10} {notice['name'][:40]:<40} {notice['note']}")
    return "\n".join(lines)


def main(settings: Settings, *, as_json: bool = False, now: float | None = None) -> int:
    data = collect(settings, time.time() if now is None else now)
    print(json.dumps(data, indent=2, ensure_ascii=False) if as_json else render(data))
    return 0
