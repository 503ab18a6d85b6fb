"""``watchfolder check [--json] [--offline]``: the doctor. Exit 0 all good (warnings allowed), 1 problems, 2 bad config.

Text for people, one line per check with its fix; ``--json`` for scripts:
``{"ok": bool, "checks": [{"name", "status": "ok"|"warn"|"fail", "message"}]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from typing import IO

from watchfolder import fsinfo, logs
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError
from watchfolder.ops import doctor

LABELS = {doctor.OK: "ok", doctor.WARN: "WARN", doctor.FAIL: "FAIL"}
WIDTH = 100


def render(checks: Sequence[doctor.Check]) -> str:
    """Given the checks, return the report for a terminal: status, name, the message wrapped under it, a summary."""
    width = max((len(check.name) for check in checks), default=0)
    indent = " " * (6 + width + 2)
    lines = []
    for check in checks:
        head = f"{LABELS[check.status]:<6}{check.name:<{width}}  "
        lines.append(textwrap.fill(check.message, WIDTH, initial_indent=head, subsequent_indent=indent,
                                   break_on_hyphens=False, break_long_words=False))
    failed = sum(check.status == doctor.FAIL for check in checks)
    warned = sum(check.status == doctor.WARN for check in checks)
    if failed:
        lines.append(f"\n{failed} problem(s) to fix, {warned} warning(s).")
    else:
        lines.append("\nAll good." if not warned else f"\nNo problems; {warned} warning(s) worth a look.")
    return "\n".join(lines)


def main(args: argparse.Namespace, *, env: Mapping[str, str] | None = None, now: float | None = None,
         mounts: Sequence[fsinfo.Mount] | None = None, inotify_limits: dict[str, int | None] | None = None,
         out: IO[str] | None = None) -> int:
    """Run the checks for ``args.config`` (``args.json``, ``args.offline``) and print them; return the exit code.

    ``env``, ``now``, ``mounts`` and ``inotify_limits`` default to this machine's (tests fix them).
    A config that cannot be loaded is exit 2: with ``--json`` reported as a failed "config" check,
    otherwise raised for the command line to print.
    """
    stream = out if out is not None else sys.stdout
    as_json = bool(getattr(args, "json", False))
    # Library lines (an unanswered call to TikTok) go to stderr at warning level, never into the report.
    logs.configure("warning", stream=sys.stderr)
    try:
        settings = config.load(getattr(args, "config", None), env=env)
    except ConfigError as exc:
        if not as_json:
            raise
        failure = doctor.Check("config", doctor.FAIL, str(exc))
        print(json.dumps({"ok": False, "checks": [failure.as_dict()]}, indent=2, ensure_ascii=False), file=stream)
        return 2
    logs.register_secret(settings.tiktok.client_secret)
    checks = doctor.run(settings, now=time.time() if now is None else now,
                        offline=bool(getattr(args, "offline", False)), mounts=mounts, inotify_limits=inotify_limits,
                        timeout=min(settings.tiktok.timeout_seconds, 15.0))
    ok = not any(check.status == doctor.FAIL for check in checks)
    if as_json:
        report = {"ok": ok, "checks": [check.as_dict() for check in checks]}
        print(json.dumps(report, indent=2, ensure_ascii=False), file=stream)
    else:
        print(render(checks), file=stream)
    return 0 if ok else 1
