"""One rule for account names, in the config and the token store (core/accountname.py).

The config used to accept `Alice Smith`, which the token store then refused: the account could never
sign in, and `/metrics` dropped every connection because one account's token lookup raised.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.harness import wait_for
from watchfolder.commands import status
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError, UsageError
from watchfolder.media import samples
from watchfolder.ops import metrics
from watchfolder.tiktok.tokens import Tokens, TokenStore

SCRIPT = Path(sys.executable).parent / "watchfolder"
CONFIG = """\
root: media
state_dir: state
tiktok:
  client_key: aw123
accounts:
  {name}: {{}}
"""


def tokens_for(account: str) -> Tokens:
    return Tokens(account, "open", "act.1", 2e9, "rft.1", 2e9, ("video.upload",), 1.0)


@pytest.mark.parametrize("name", ["Alice Smith", "josé", "bob_2", "a", "x.y-z", "Ünal Çelik"])
def test_a_name_the_config_accepts_is_one_the_token_store_accepts(tmp_path: Path, name: str) -> None:
    path = tmp_path / "watchfolder.yaml"
    path.write_text(CONFIG.format(name=f'"{name}"'), encoding="utf-8")
    settings = config.load(path, {})
    store = TokenStore(settings.state_dir)

    store.save(tokens_for(settings.accounts[0].name))

    assert store.load(name) == tokens_for(name)
    assert store.accounts() == [name]


@pytest.mark.parametrize(("name", "why"), [
    ("a:b", "':'"), ("trailing.", "ending"), ("trailing ", "ending"), (" leading", "starting"),
    ("-dash", "starting"), ("x" * 65, "this one has 65"), ("line\\nbreak", "'\\n'"), ("a*b", "'*'"),
    ("a/b", "'/'"), ("..", "starting"), (".hidden", "starting"),
])
def test_a_name_outside_the_rule_is_a_config_error_and_a_token_store_refusal(tmp_path: Path, name: str,
                                                                             why: str) -> None:
    path = tmp_path / "watchfolder.yaml"
    path.write_text(CONFIG.format(name=f'"{name}"'), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        config.load(path, {})
    [problem] = caught.value.problems
    assert problem.startswith("at 'accounts.") and "must be usable as a folder name" in problem
    assert why in problem
    shown = name.replace("\\n", "\n")
    with pytest.raises(UsageError, match="must be usable as a folder name"):
        TokenStore(tmp_path / "state").save(tokens_for(shown))


def test_the_command_line_names_the_file_the_key_and_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "watchfolder.yaml"
    path.write_text(CONFIG.format(name='"alice:work"'), encoding="utf-8")

    result = subprocess.run([str(SCRIPT), "status", "-c", str(path)], capture_output=True, text=True, timeout=60,
                            check=False, env={**os.environ, "WATCHFOLDER_CLIENT_SECRET": "x"})

    assert result.returncode == 2
    assert str(path) in result.stderr and "accounts.alice:work" in result.stderr
    assert "letters, digits, spaces" in result.stderr and "Traceback" not in result.stderr


def test_an_account_with_a_space_uploads_and_metrics_answer(make_rig, tmp_path: Path) -> None:
    rig = make_rig(accounts={"Alice Smith": {"mode": "inbox"}, "bob": {"mode": "inbox"}},
                   overrides={"metrics.listen": "127.0.0.1:0"})
    monitor = metrics.HealthMonitor()
    server = metrics.MetricsServer(rig.settings, monitor)
    rig.start([monitor, server])
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("Alice Smith", "clip.mp4", tmp_path / "clip.mp4")

    assert rig.wait_sidecar("Alice Smith", "clip.mp4")["account"] == "Alice Smith"
    url = f"http://127.0.0.1:{server.port}"
    wait_for(lambda: requests.get(url + "/healthz", timeout=5).status_code == 200, 10, what="healthy")
    scrape = requests.get(url + "/metrics", timeout=5)
    assert scrape.status_code == 200
    assert 'watchfolder_signed_in{account="Alice Smith"} 1.0' in scrape.text
    assert status.main(rig.settings) == 0
