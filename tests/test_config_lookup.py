"""Where the config is found: -c, then $WATCHFOLDER_CONFIG, then /etc/watchfolder, then the user's config folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchfolder.config import lookup
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    names = {"given": tmp_path / "given.yaml", "env": tmp_path / "env.yaml",
             "system": tmp_path / "etc" / "watchfolder" / "config.yaml",
             "user": tmp_path / "xdg" / "watchfolder" / "config.yaml"}
    for path in names.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x: 1\n")
    return names


def test_the_order_is_given_then_environment_then_system_then_user(places, tmp_path):
    env = {"WATCHFOLDER_CONFIG": str(places["env"]), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    system = places["system"]
    assert lookup.find(str(places["given"]), env, system) == str(places["given"])
    assert lookup.find(None, env, system) == str(places["env"])
    del env["WATCHFOLDER_CONFIG"]
    assert lookup.find(None, env, system) == system
    system.unlink()
    assert lookup.find(None, env, system) == places["user"]


def test_the_user_file_defaults_to_home_dot_config(tmp_path):
    assert lookup.user_config({"HOME": str(tmp_path)}) == tmp_path / ".config" / "watchfolder" / "config.yaml"
    assert lookup.user_config({"HOME": str(tmp_path), "XDG_CONFIG_HOME": "relative/ignored"}) == \
        tmp_path / ".config" / "watchfolder" / "config.yaml"


def test_none_found_names_every_place_looked(tmp_path):
    system = tmp_path / "etc" / "config.yaml"
    with pytest.raises(ConfigError) as caught:
        lookup.find(None, {"HOME": str(tmp_path)}, system)
    [problem] = caught.value.problems
    assert "-c PATH (not given)" in problem and "$WATCHFOLDER_CONFIG (not set)" in problem
    assert str(system) in problem and str(tmp_path / ".config" / "watchfolder" / "config.yaml") in problem
    assert problem.index(str(system)) < problem.index(".config")


def test_a_missing_file_named_by_the_environment_is_an_error_about_that_file(tmp_path):
    (tmp_path / "xdg" / "watchfolder").mkdir(parents=True)
    (tmp_path / "xdg" / "watchfolder" / "config.yaml").write_text("root: x\n")
    with pytest.raises(ConfigError) as caught:
        config.load(None, {"WATCHFOLDER_CONFIG": str(tmp_path / "gone.yaml"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert "gone.yaml" in str(caught.value)


def test_load_reads_the_user_config_when_nothing_else_is_set(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup, "SYSTEM_CONFIG", tmp_path / "no-etc" / "config.yaml")
    user = tmp_path / "xdg" / "watchfolder" / "config.yaml"
    user.parent.mkdir(parents=True)
    (tmp_path / "media").mkdir()
    user.write_text("root: ../../media\nstate_dir: ../../state\ntiktok:\n  client_key: k\n"
                    "accounts:\n  alice:\n    mode: inbox\n")
    settings = config.load(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert settings.path == user
    assert settings.root == tmp_path / "media"


def test_the_command_line_says_where_it_looked(tmp_path, monkeypatch, capsys):
    from watchfolder import cli

    monkeypatch.setattr(lookup, "SYSTEM_CONFIG", tmp_path / "no-etc" / "config.yaml")
    monkeypatch.delenv("WATCHFOLDER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert "no-etc" in err and str(tmp_path / "xdg" / "watchfolder" / "config.yaml") in err
