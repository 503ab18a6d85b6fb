"""The status page over plain HTTP: /api/status is the JSON of `status --json`, names are shown as text (never
as markup), no token reaches the page, and `metrics.page: false` turns the page off."""

from __future__ import annotations

import io
import json
from typing import Any

import requests

from tests.harness import Rig, wait_for
from watchfolder.commands import status
from watchfolder.media import samples
from watchfolder.ops import metrics
from watchfolder.ops.health import HealthMonitor
from watchfolder.ops.statuspage import StatusPage

HOSTILE = '<script>alert("x")</script>.mp4'.replace("/", "")  # a file name cannot hold a slash


def serve(rig: Rig, **options: Any) -> tuple[str, metrics.MetricsServer]:
    monitor = HealthMonitor()
    server = metrics.MetricsServer(rig.settings, monitor, **options)
    rig.start([monitor, server])
    return f"http://127.0.0.1:{server.port}", server


def test_api_status_is_the_json_of_status_and_the_page_shows_names_as_text(make_rig, tmp_path):
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0"})
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    samples.write_mp4(tmp_path / "hostile.mp4", size=210_000)
    now = rig.emulator.clock.now()
    url, server = serve(rig, clock=lambda: now)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    rig.drop("alice", HOSTILE, tmp_path / "hostile.mp4")
    rig.wait_sidecar("alice", "clip.mp4")
    rig.wait_sidecar("alice", HOSTILE)
    rig.stop()  # nothing moves any more: the two answers must be equal
    server = metrics.MetricsServer(rig.settings, HealthMonitor(), clock=lambda: now)
    try:
        url = f"http://127.0.0.1:{server.port}"
        answer = requests.get(url + "/api/status", timeout=5)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
        printed = io.StringIO()
        assert status.main(rig.settings, as_json=True, now=now, out=printed) == 0
        assert answer.json() == json.loads(printed.getvalue())
        assert {row["name"] for row in answer.json()["items"]} == {"clip.mp4", HOSTILE}

        page = requests.get(url + "/", timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert "<script" not in page.text  # the hostile name is text, and the page has no script of its own
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;script&gt;.mp4" in page.text
        assert "clip.mp4" in page.text and "2 done and 0 failed in 24 h" in page.text
        user = rig.users["alice"]
        for secret in (user.access_token, user.refresh_token, rig.emulator.config.client_secret):
            assert secret not in page.text and secret not in answer.text
        assert str(rig.base) not in page.text  # no path outside the media root (the state dir sits beside it)
        css = requests.get(url + "/style.css", timeout=5)
        assert css.status_code == 200 and "prefers-color-scheme:dark" in css.text
    finally:
        server.close()


def test_page_false_leaves_only_healthz_and_metrics(make_rig):
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0", "metrics.page": False})
    url, _ = serve(rig)
    wait_for(lambda: requests.get(url + "/healthz", timeout=2).status_code == 200, 10, what="healthy")
    assert requests.get(url + "/api/status", timeout=5).status_code == 404
    assert requests.get(url + "/item/1", timeout=5).status_code == 404
    root = requests.get(url + "/", timeout=5)
    assert root.status_code == 200 and root.headers["Content-Type"].startswith("text/plain")
    assert "<html" not in root.text


def test_an_items_detail_view_shows_its_history_and_sidecar(make_rig, tmp_path):
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0"})
    rig.emulator.faults.fail_next("inbox_init", error_code="invalid_params")
    url, _ = serve(rig)
    samples.write_mp4(tmp_path / "bad.mp4", size=200_000)
    rig.drop("alice", HOSTILE, tmp_path / "bad.mp4")
    sidecar = rig.wait_sidecar("alice", HOSTILE, folder="failed")
    samples.write_mp4(tmp_path / "later.mp4", size=210_000)
    rig.emulator.faults.fail_next("inbox_init", error_code="spam_risk_too_many_pending_share")
    rig.drop("alice", "later.mp4", tmp_path / "later.mp4")
    parked = "&quot;wait_reason&quot;: &quot;pending_share&quot;"
    wait_for(lambda: parked in requests.get(url + "/item/2", timeout=5).text, 20, what="later.mp4 parked at the cap")

    page = requests.get(url + "/", timeout=5).text
    assert '<a href="/item/1">&lt;script&gt;' in page
    view = requests.get(url + "/item/1", timeout=5)
    assert view.status_code == 200 and "<script" not in view.text
    assert "<code>invalid_params</code>" in view.text and 'class="timeline"' in view.text
    for event in sidecar["history"]:  # every step of the sidecar's history is on the timeline
        assert f"<strong>{event['state']}</strong>" in view.text
    assert '&quot;result&quot;: &quot;failed&quot;' in view.text  # the raw sidecar, escaped
    assert 'http-equiv="refresh"' not in view.text  # a finished item does not change

    waiting = requests.get(url + "/item/2", timeout=5)
    assert waiting.status_code == 200 and "its sidecar is written when it reaches done/ or failed/" in waiting.text
    assert 'http-equiv="refresh"' in waiting.text  # an item on its way: the view follows it
    for missing in ("/item/99", "/item/x", "/item/1x", "/item/-1", "/item/1%2F"):
        assert requests.get(url + missing, timeout=5).status_code == 404, missing


def test_the_state_directory_path_never_reaches_the_page(make_rig):
    rig = make_rig()
    where = str(rig.settings.state_dir)
    problem = f"the heartbeat cannot be recorded: OperationalError: disk I/O error at {where}/watchfolder.sqlite3"
    health = {"ok": False, "status": "unhealthy", "problems": [problem], "loop_age_seconds": 1.0, "observers": []}
    rig.start()
    answer = StatusPage(rig.settings, lambda: health).get("/", rig.emulator.clock.now())
    text = answer.body.decode()
    assert answer.status == 200 and "disk I/O error at [state_dir]/watchfolder.sqlite3" in text
    assert where not in text and str(rig.base) not in text


def test_an_account_without_a_sign_in_shows_the_command_that_fixes_it(make_rig, tmp_path):
    rig = make_rig(sign_in=False)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    page = StatusPage(rig.settings)

    def parked() -> str | None:
        text = page.get("/", rig.emulator.clock.now()).body.decode()
        return text if "clip.mp4" in text and "waiting" in text else None

    text = wait_for(parked, 20, what="clip.mp4 waiting for a sign-in on the page")
    assert "not signed in" in text and "<dt>Fix</dt><dd><code>watchfolder auth login alice</code></dd>" in text
    assert "ACCOUNT" not in text
