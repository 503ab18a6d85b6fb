"""`media_host.url_prefix: http://…` is refused at start while the daemon talks to TikTok itself.

TikTok pulls photos and PULL_FROM_URL videos only over HTTPS: an http prefix used to be accepted, and
every photo then failed at TikTok, one after the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

SCRIPT = Path(sys.executable).parent / "watchfolder"


def config(tmp_path: Path, **tiktok: str) -> Path:
    (tmp_path / "media").mkdir()
    path = tmp_path / "watchfolder.yaml"
    path.write_text(yaml.safe_dump({
        "root": str(tmp_path / "media"), "state_dir": str(tmp_path / "state"),
        "tiktok": {"client_key": "aw123", **tiktok},
        "media_host": {"url_prefix": "http://photos.example.net/tiktok/", "serve": "127.0.0.1:0"},
        "accounts": {"alice": {"mode": "inbox"}},
    }), encoding="utf-8")
    return path


def test_the_daemon_refuses_an_http_media_host_for_tiktok_before_starting(tmp_path: Path) -> None:
    path = config(tmp_path)

    result = subprocess.run([str(SCRIPT), "run", "-c", str(path)], capture_output=True, text=True, timeout=60,
                            check=False, env={**os.environ, "WATCHFOLDER_CLIENT_SECRET": "x"})

    assert result.returncode == 2
    assert str(path) in result.stderr and "at 'media_host.url_prefix'" in result.stderr
    assert "only over https" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()   # nothing was started


def test_an_emulator_may_be_given_an_http_media_host(tmp_path: Path) -> None:
    path = config(tmp_path, api_base_url="http://127.0.0.1:9")

    result = subprocess.run([str(SCRIPT), "check", "--json", "--offline", "-c", str(path)], capture_output=True,
                            text=True, timeout=60, check=False, env={**os.environ, "WATCHFOLDER_CLIENT_SECRET": "x"})

    assert result.returncode != 2, result.stdout   # the config loads (other checks may still fail here)
    verdicts = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert verdicts["config"]["status"] == "ok", verdicts["config"]
