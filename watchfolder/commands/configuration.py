"""``watchfolder config example|show``: the commented example config, and the config in force."""

from __future__ import annotations

import argparse

from watchfolder.config import settings as config
from watchfolder.config import show
from watchfolder.core.errors import UsageError


def main(args: argparse.Namespace) -> int:
    """``example`` prints the shipped example (no config needed); ``show`` loads the config (-c or the
    lookup order) and prints it with defaults filled in and the secret masked."""
    if args.config_command == "example":
        print(show.example_text(), end="")
        return 0
    if args.config_command == "show":
        print(show.show_text(config.load(getattr(args, "config", None))), end="")
        return 0
    raise UsageError("watchfolder config: say example or show")
