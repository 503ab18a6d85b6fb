"""watchfolder config show: the config in force, defaults filled in, the secret never shown; it loads again."""

from __future__ import annotations

from pathlib import Path

import yaml

from watchfolder import cli
from watchfolder.config import settings as config

SECRET = "s3cret-value-never-shown"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "media").mkdir(exist_ok=True)
    (tmp_path / "secret").write_text(SECRET + "\n")
    path = tmp_path / "config.yaml"
    path.write_text("root: media\nstate_dir: state\ntiktok:\n  client_key: aw123\n  client_secret_file: secret\n"
                    f"{extra}accounts:\n  alice:\n    mode: inbox\n")
    return path


def test_show_fills_in_defaults_and_masks_the_secret(tmp_path, capsys):
    path = write_config(tmp_path, "notify:\n  webhook: https://hooks.example.com/x\n  events: [item_failed]\n")
    assert cli.main(["config", "show", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    assert "# client_secret: *** (from file)" in out
    shown = yaml.safe_load(out)
    assert shown["root"] == str(tmp_path / "media") and shown["watch"]["settle_seconds"] == 10
    assert shown["upload"]["chunk_size"] == 64_000_000 and shown["log_format"] == "auto"
    assert shown["notify"]["events"] == ["item_failed"]
    assert shown["accounts"]["alice"] == {"mode": "inbox", "video_source": "file_upload", "defaults": {}}


def test_what_show_prints_loads_to_the_same_settings(tmp_path, capsys):
    path = write_config(tmp_path, "watch:\n  observer: polling\n  ignore: ['*.bak']\n"
                                  "metrics:\n  listen: 127.0.0.1:9808\n"
                                  "video_limits:\n  max_fps: 120\n  codecs: [h264, av1]\n  max_duration: 15m\n")
    assert cli.main(["config", "show", "-c", str(path)]) == 0
    again = tmp_path / "again.yaml"
    again.write_text(capsys.readouterr().out)
    env = {"WATCHFOLDER_CLIENT_SECRET": SECRET}
    first, second = config.load(path, env), config.load(again, env)
    assert second.watch == first.watch and second.upload == first.upload and second.metrics == first.metrics
    assert second.tiktok.client_key == first.tiktok.client_key and second.accounts == first.accounts
    assert second.video_limits == first.video_limits and second.video_limits.max_fps == 120


def test_show_without_a_config_names_the_places_looked(tmp_path, capsys, monkeypatch):
    from watchfolder.config import lookup

    monkeypatch.setattr(lookup, "SYSTEM_CONFIG", tmp_path / "etc" / "config.yaml")
    monkeypatch.delenv("WATCHFOLDER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert cli.main(["config", "show"]) == 2
    assert "looked at" in capsys.readouterr().err
    assert cli.main(["config"]) == 2
