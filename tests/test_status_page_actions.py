"""The status page's actions (metrics.actions): off by default; when on, a retry needs the page's CSRF token and
either this host (loopback) or the password of metrics.password_file; a refused POST is 403 and changes nothing."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness import Rig
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError
from watchfolder.media import samples
from watchfolder.ops import metrics, report
from watchfolder.ops.health import HealthMonitor


def outside_address() -> str:
    """This machine's address on its network (not loopback): requests from it are "from another host"."""
    candidates = []
    for target in ("198.51.100.1", "10.255.255.254"):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((target, 9))  # no packet is sent: this only picks the outgoing interface
            candidates.append(str(probe.getsockname()[0]))
        except OSError:
            pass
        finally:
            probe.close()
    try:
        candidates.append(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    address = next((a for a in candidates if not a.startswith(("127.", "0."))), "")
    if not address:
        pytest.skip("this machine has no network address besides loopback to send a request from")
    return address


def failed_rig(make_rig: Any, tmp_path: Path, **overrides: Any) -> tuple[Rig, metrics.MetricsServer]:
    """A daemon with the page (and these metrics settings) and one item failed by TikTok: alice/failed/bad.mp4."""
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0", **{f"metrics.{k}": v for k, v in overrides.items()}})
    rig.emulator.faults.fail_next("inbox_init", error_code="invalid_params")
    monitor = HealthMonitor()
    server = metrics.MetricsServer(rig.settings, monitor, clock=rig.emulator.clock.now)
    rig.start([monitor, server])
    samples.write_mp4(tmp_path / "bad.mp4", size=200_000)
    rig.drop("alice", "bad.mp4", tmp_path / "bad.mp4")
    rig.wait_sidecar("alice", "bad.mp4", folder="failed")
    return rig, server


def token_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no retry form on the page"
    return found[1]


def still_failed(rig: Rig) -> bool:
    failed, inbox = rig.folder("alice", "failed"), rig.folder("alice", "inbox")
    return (failed / "bad.mp4").exists() and not (inbox / "bad.mp4").exists()


def test_actions_are_off_by_default_and_a_post_changes_nothing(make_rig, tmp_path):
    rig, server = failed_rig(make_rig, tmp_path)
    url = f"http://127.0.0.1:{server.port}"
    page = requests.get(url + "/", timeout=5).text
    assert "<form" not in page and "bad.mp4" in page
    answer = requests.post(url + "/actions/retry", data={"csrf": server.page.actions.token, "item": "1"}, timeout=5)
    assert answer.status_code == 403 and "actions are off" in answer.text
    assert still_failed(rig)


def test_retry_from_this_host_needs_the_pages_token(make_rig, tmp_path):
    rig, server = failed_rig(make_rig, tmp_path, actions=True)
    url = f"http://127.0.0.1:{server.port}"
    token = token_of(requests.get(url + "/", timeout=5).text)
    for form in ({"item": "1"}, {"item": "1", "csrf": "guessed"}, {"item": "1", "csrf": token[:-1]}):
        refused = requests.post(url + "/actions/retry", data=form, timeout=5)
        assert refused.status_code == 403 and "token" in refused.text
        assert still_failed(rig)
    done = requests.post(url + "/actions/retry", data={"item": "1", "csrf": token}, timeout=5)
    assert done.status_code == 200 and "alice/failed/bad.mp4 is back in alice/inbox/" in done.text
    rig.wait_sidecar("alice", "bad.mp4")  # taken in again, and this time TikTok takes it
    again = requests.post(url + "/actions/retry", data={"item": "1", "csrf": token}, timeout=5)
    assert again.status_code == 409 and "no failed item with id 1" in again.text


def test_from_another_host_actions_need_the_password(make_rig, tmp_path):
    address = outside_address()
    secret = tmp_path / "page-password"
    secret.write_text("correct horse\n", encoding="utf-8")
    rig, server = failed_rig(make_rig, tmp_path, actions=True, password_file=str(secret), listen="0.0.0.0:0")
    outside = f"http://{address}:{server.port}"
    token = server.page.actions.token
    form = {"item": "1", "csrf": token}
    assert requests.get(outside + "/", timeout=5).status_code == 401
    assert requests.get(outside + "/", auth=("me", "wrong"), timeout=5).status_code == 401
    assert requests.get(outside + "/healthz", timeout=5).status_code == 200  # scrapers need no password
    refused = requests.post(outside + "/actions/retry", data=form, timeout=5)
    assert refused.status_code == 403 and "password" in refused.text and still_failed(rig)
    refused = requests.post(outside + "/actions/retry", data=form, auth=("me", "wrong"), timeout=5)
    assert refused.status_code == 403 and still_failed(rig)
    page = requests.get(outside + "/", auth=("me", "correct horse"), timeout=5)
    assert page.status_code == 200 and token_of(page.text) == token
    assert "correct horse" not in page.text
    done = requests.post(outside + "/actions/retry", data=form, auth=("me", "correct horse"), timeout=5)
    assert done.status_code == 200 and not still_failed(rig)


def test_from_another_host_without_a_password_file_actions_are_refused(make_rig, tmp_path):
    address = outside_address()
    rig, server = failed_rig(make_rig, tmp_path, actions=True, listen="0.0.0.0:0")
    outside = f"http://{address}:{server.port}"
    page = requests.get(outside + "/", timeout=5)
    assert page.status_code == 200 and "<form" not in page.text  # no button that could only be refused
    refused = requests.post(outside + "/actions/retry", data={"item": "1", "csrf": server.page.actions.token},
                            timeout=5)
    assert refused.status_code == 403 and "only from this host" in refused.text
    assert still_failed(rig)


def test_a_password_file_that_cannot_be_read_stops_the_config_naming_the_key(tmp_path):
    base = "root: media\nstate_dir: state\ntiktok:\n  client_key: aw1\naccounts:\n  alice: {}\nmetrics:\n"
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    for value, problem in (("missing", "cannot read"), ("empty", "is empty")):
        path = tmp_path / "config.yaml"
        path.write_text(base + f"  listen: 127.0.0.1:0\n  actions: true\n  password_file: {value}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            config.load(path, {})
        assert any(p.startswith("at 'metrics.password_file'") and problem in p for p in caught.value.problems)
    (tmp_path / "good").write_text("s3cret-words\n", encoding="utf-8")
    path.write_text(base + "  listen: 127.0.0.1:0\n  password_file: good\n", encoding="utf-8")
    loaded = config.load(path, {})
    assert loaded.metrics.password == "s3cret-words" and "s3cret" not in repr(loaded)
    assert loaded.metrics.actions is False and loaded.metrics.page is True


def test_pause_and_resume_from_the_page_need_its_token(make_rig, tmp_path):
    rig, server = failed_rig(make_rig, tmp_path, actions=True)
    url = f"http://127.0.0.1:{server.port}"
    page = requests.get(url + "/", timeout=5).text
    assert 'action="/actions/pause"' in page and 'action="/actions/resume"' not in page
    token = token_of(page)

    def paused() -> str | None:
        return report.collect(rig.settings, rig.emulator.clock.now())["accounts"][0]["paused"]

    refused = requests.post(url + "/actions/pause", data={"account": "alice"}, timeout=5)
    assert refused.status_code == 403 and paused() is None
    refused = requests.post(url + "/actions/pause", data={"account": "mallory", "csrf": token}, timeout=5)
    assert refused.status_code == 400 and paused() is None
    done = requests.post(url + "/actions/pause", data={"account": "alice", "csrf": token}, timeout=5)
    assert done.status_code == 200 and "alice: paused" in done.text and paused() == "user"
    assert "paused by you (watchfolder resume alice)" in done.text
    assert 'action="/actions/resume"' in done.text and 'action="/actions/pause"' not in done.text
    # A file dropped in while the account is paused goes once it is resumed.
    samples.write_mp4(tmp_path / "next.mp4", size=220_000)
    rig.drop("alice", "next.mp4", tmp_path / "next.mp4")
    refused = requests.post(url + "/actions/resume", data={"account": "alice", "csrf": "stale"}, timeout=5)
    assert refused.status_code == 403 and paused() == "user"
    assert not (rig.folder("alice", "done") / "next.mp4").exists()
    done = requests.post(url + "/actions/resume", data={"account": "alice", "csrf": token}, timeout=5)
    assert done.status_code == 200 and "alice: resumed" in done.text and paused() is None
    rig.wait_sidecar("alice", "next.mp4")
