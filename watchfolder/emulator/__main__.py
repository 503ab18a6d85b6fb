"""``python -m watchfolder.emulator`` runs the emulator in the foreground (see cli.py)."""

from __future__ import annotations

import sys

from watchfolder.emulator.cli import main

raise SystemExit(main(sys.argv[1:]))
