"""``python -m watchfolder`` runs the command line."""

from watchfolder import cli

raise SystemExit(cli.main())
