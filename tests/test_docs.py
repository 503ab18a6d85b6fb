"""The README promises what the program does: every command is documented and answers --help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watchfolder import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_every_command_is_in_the_readme_table(command):
    assert re.search(rf"^\| `watchfolder {command}\b", README, re.MULTILINE), f"{command} missing from README"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["status", "--help"], ["auth", "login", "--help"],
                                  ["check", "--help"], ["retry", "--help"], ["demo", "--help"]])
def test_help_works_for_every_command(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 0
    assert "usage: watchfolder" in capsys.readouterr().out


def test_bad_usage_exits_2_with_a_message(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_an_open_id_that_begins_with_a_dash_is_a_value_not_an_option():
    assert cli.join_values(["auth", "import", "a", "--open-id", "-abc", "-c", "x.yaml"]) == [
        "auth", "import", "a", "--open-id=-abc", "-cx.yaml"]
    args = cli.build_parser().parse_args(cli.join_values(
        ["auth", "import", "a", "--access-token", "-t", "--refresh-token", "r", "--open-id", "-0x"]))
    assert (args.open_id, args.access_token) == ("-0x", "-t")


def test_the_readme_quick_start_is_what_ci_runs():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    test_line = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q"
    assert test_line in README and test_line in ci
