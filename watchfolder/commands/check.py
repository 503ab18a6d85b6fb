"""``watchfolder check``: validate the config and the folders without starting anything."""

from __future__ import annotations

import argparse
import json
import time

from watchfolder import config
from watchfolder.intake import intake
from watchfolder.tokens import TokenStore


def main(args: argparse.Namespace) -> int:
    settings = config.load(getattr(args, "config", None))
    problems: list[str] = []
    notes: list[str] = [f"config {settings.path}: ok ({len(settings.accounts)} account(s))"]
    if not settings.root.is_dir():
        problems.append(f"root {settings.root} does not exist (is the share mounted?)")
    tokens = TokenStore(settings.state_dir)
    now = time.time()
    for account in settings.accounts:
        held = tokens.load(account.name) if settings.state_dir.exists() else None
        if held is None:
            problems.append(f"{account.name}: not signed in: watchfolder auth login {account.name}")
        elif held.refresh_expires_at <= now:
            problems.append(f"{account.name}: the sign-in expired: watchfolder auth login {account.name}")
        else:
            notes.append(f"{account.name}: signed in")
    warnings = intake.inbox_caption_warnings(settings) if settings.root.is_dir() else []
    if getattr(args, "json", False):
        print(json.dumps({"ok": not problems, "problems": problems, "warnings": warnings, "notes": notes},
                         indent=2))
    else:
        for line in notes:
            print(f"ok    {line}")
        for line in warnings:
            print(f"warn  {line}")
        for line in problems:
            print(f"FAIL  {line}")
    return 1 if problems else 0
