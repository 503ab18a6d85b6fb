"""``watchfolder status [--json] [--watch]``: what is queued, waiting (why, until when), uploading (bytes,
speed, time left), processing (for how long), and finished today."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from watchfolder.config.settings import Settings
from watchfolder.ops.report import collect


def render(data: dict[str, Any]) -> str:
    lines = []
    if data.get("message"):
        return str(data["message"])
    daemon = data["daemon"]
    if daemon is None or not daemon["running"]:
        lines.append("daemon: not running")
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
                                                 else "") + (f" [{row['media_text']}]" if row.get("media_text")
                                                             else ""))
    for notice in data["notices"]:
        lines.append(f"       {notice['account']:<12} {'inbox':<10} {notice['name'][:40]:<40} {notice['note']}")
    return "\n".join(lines)


CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen


def main(settings: Settings, *, as_json: bool = False, now: float | None = None, watch: bool = False,
         out: IO[str] | None = None, rounds: int | None = None, interval: float = 1.0) -> int:
    """Print the status once; with ``watch``, every ``interval`` seconds until Ctrl-C (``rounds`` caps it, for
    tests): on a terminal the screen is redrawn, elsewhere each round follows the last (``--json``: one
    compact JSON document per line)."""
    stream = out if out is not None else sys.stdout
    if not watch:
        data = collect(settings, time.time() if now is None else now)
        print(json.dumps(data, indent=2, ensure_ascii=False) if as_json else render(data), file=stream)
        return 0
    on_terminal = bool(getattr(stream, "isatty", lambda: False)())
    done = 0
    try:
        while rounds is None or done < rounds:
            data = collect(settings, time.time())
            if as_json:
                print(json.dumps(data, ensure_ascii=False), file=stream, flush=True)
            else:
                stamp = time.strftime("%H:%M:%S")
                text = f"{render(data)}\n\n(every {interval:g} s; {stamp}; Ctrl-C to stop)"
                print((CLEAR if on_terminal else "") + text + ("" if on_terminal else "\n"), file=stream,
                      flush=True)
            done += 1
            if rounds is None or done < rounds:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0
