"""The command is the first positional argument and nothing else; every command line the README shows parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from watchfolder import cli
from watchfolder.emulator import cli as emulator_cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def readme_command_lines() -> list[str]:
    """Every ``watchfolder COMMAND …`` the README shows, in backticks or in a code block, as written."""
    found: list[str] = []
    in_block = False
    for line in README.splitlines():
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        spans = [line] if in_block else re.findall(r"`([^`]+)`", line.replace("\\|", "¦"))
        for span in spans:
            for match in re.finditer(r"(?:^|[\s/])watchfolder((?: [^|#`\n]*)?)", span.split(" #")[0]):
                words = match[1].split()
                if words and words[0] in cli.COMMANDS + ("-c", "--config", "--version", "completion"):
                    found.append("watchfolder" + match[1].rstrip())
    return found


def as_argv(line: str) -> list[str]:
    """A documented line as a user would type it: optional parts given, placeholders filled in."""
    text = line.split(" > ")[0].replace("[", "").replace("]", "").replace("…", "x.yaml").replace("...", "")
    text = re.sub(r"(\w+)(?:¦\w+)+", r"\1", text)  # "bash\|zsh\|fish" in a table: the first choice
    return ["3600" if word == "S" else word for word in shlex.split(text)[1:]]  # S: seconds


def test_the_readme_shows_many_command_lines():
    lines = readme_command_lines()
    assert len(lines) >= 12, lines
    assert {as_argv(line)[0] for line in lines} >= {"run", "check", "status", "auth", "emulator", "demo"}


@pytest.mark.parametrize("line", readme_command_lines())
def test_every_command_line_in_the_readme_parses(line):
    argv = as_argv(line)
    split = cli._split_emulator(argv)
    if split is not None:
        emulator_cli.build_parser().parse_args(split[1])
        return
    args = cli.build_parser().parse_args(cli.join_values(argv))
    assert args.command == argv[0] or argv[0].startswith("-")


@pytest.mark.parametrize("argv", [
    ["auth", "login", "emulator"], ["auth", "logout", "emulator"], ["-c", "x.yaml", "auth", "login", "emulator"],
    ["auth", "import", "emulator", "--access-token", "a", "--refresh-token", "r"], ["retry", "emulator"],
])
def test_an_account_or_item_named_emulator_is_not_the_emulator_command(argv):
    assert cli._split_emulator(argv) is None
    args = cli.build_parser().parse_args(cli.join_values(argv))
    assert args.command in ("auth", "retry")
    assert "emulator" in (getattr(args, "account", None), getattr(args, "item", None))


def test_status_emulator_is_a_usage_error_not_the_emulator(capsys):
    assert cli.main(["status", "emulator"]) == 2
    assert "unrecognized arguments: emulator" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "rest"), [
    (["emulator"], []), (["emulator", "--listen", "127.0.0.1:0"], ["--listen", "127.0.0.1:0"]),
    (["-c", "x.yaml", "emulator", "--user", "emulator"], ["--user", "emulator"]),
    (["--config=x.yaml", "emulator", "--verbose"], ["--verbose"]),
])
def test_the_emulator_command_hands_the_rest_to_the_emulator(argv, rest):
    assert cli._split_emulator(argv) == (argv[:argv.index("emulator")], rest)


def test_an_account_named_emulator_signs_in_with_auth_import(tmp_path, capsys):
    root = tmp_path / "media"
    root.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"root: {root}\nstate_dir: {tmp_path / 'state'}\ntiktok:\n  client_key: k\n"
                      "  client_secret: s3cret-value\naccounts:\n  emulator:\n    mode: inbox\n")
    code = cli.main(["auth", "import", "emulator", "-c", str(config), "--access-token", "act.one",
                     "--refresh-token", "rft.two", "--scope", "user.info.basic,video.upload"])
    assert code == 0, capsys.readouterr().err
    assert cli.main(["auth", "list", "--json", "-c", str(config)]) == 0
    assert '"emulator"' in capsys.readouterr().out
