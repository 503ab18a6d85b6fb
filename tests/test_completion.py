"""Shell completion: the generated scripts complete commands, actions and options in bash, zsh and fish."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from watchfolder import cli


def script_for(shell: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    assert cli.main(["completion", shell]) == 0
    path = tmp_path / f"watchfolder.{shell}"
    path.write_text(capsys.readouterr().out)
    return path


def shell(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is installed by .ci/run; install it to run this test"
    return found


def bash_complete(script: Path, line: str, cwd: Path) -> list[str]:
    """What TAB offers at the end of ``line`` in bash."""
    program = f'''source {script}
COMP_WORDS=({line}{' ""' if line.endswith(' ') else ''})
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
_watchfolder
printf '%s\\n' "${{COMPREPLY[@]}}"'''
    result = subprocess.run([shell("bash"), "-c", program], capture_output=True, text=True, cwd=cwd, check=True)
    return result.stdout.split()


def test_bash_completes_commands_actions_options_and_config_files(capsys, tmp_path):
    script = script_for("bash", capsys, tmp_path)
    (tmp_path / "conf.yaml").write_text("x: 1\n")
    assert "status" in bash_complete(script, "watchfolder ", tmp_path)
    assert bash_complete(script, "watchfolder st", tmp_path) == ["status"]
    assert bash_complete(script, "watchfolder auth ", tmp_path) == ["login", "import", "list", "logout"]
    assert bash_complete(script, "watchfolder -c conf.yaml auth l", tmp_path) == ["login", "list", "logout"]
    assert "--json" in bash_complete(script, "watchfolder status --", tmp_path)
    assert "--access-token" in bash_complete(script, "watchfolder auth import alice --", tmp_path)
    assert bash_complete(script, "watchfolder status -c co", tmp_path) == ["conf.yaml"]
    assert "--listen" in bash_complete(script, "watchfolder emulator --", tmp_path)
    assert bash_complete(script, "watchfolder config ", tmp_path) == ["example", "show"]
    assert bash_complete(script, "watchfolder completion f", tmp_path) == ["fish"]


def test_zsh_completes_commands_and_options(capsys, tmp_path):
    script = script_for("zsh", capsys, tmp_path)

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        program = f'''compdef() {{ }}; _files() {{ print FILES }}
compadd() {{ [[ $1 == -- ]] && shift; print -l -- "$@" }}
source {script}
words=({quoted}); CURRENT=${{#words}}; PREFIX=${{words[CURRENT]}}
_watchfolder'''
        result = subprocess.run([shell("zsh"), "-f", "-c", program], capture_output=True, text=True, check=True)
        return [w for w in result.stdout.split() if w.startswith(words[-1])]

    assert "status" in complete("watchfolder", "")
    assert complete("watchfolder", "auth", "lo") == ["login", "logout"]
    assert "--json" in complete("watchfolder", "status", "--")
    assert complete("watchfolder", "status", "-c", "") == ["FILES"]


def test_fish_completes_commands_and_options(capsys, tmp_path):
    script = script_for("fish", capsys, tmp_path)

    def complete(line: str) -> list[str]:
        program = f"source {script}; complete -C{line!r}"
        result = subprocess.run([shell("fish"), "--no-config", "-c", program], capture_output=True, text=True,
                                check=True)
        return [row.split("\t")[0] for row in result.stdout.splitlines()]

    assert "status" in complete("watchfolder ")
    assert complete("watchfolder auth lo") == ["login", "logout"]
    assert "--json" in complete("watchfolder status --")
    assert "--listen" in complete("watchfolder emulator --")


def test_an_unknown_shell_is_a_usage_error(capsys):
    assert cli.main(["completion", "tcsh"]) == 2
    assert "invalid choice" in capsys.readouterr().err
