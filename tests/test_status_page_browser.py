"""The status page in a real headless Chromium, on the real daemon and the emulator: every state an item or an
account can be in shows up per account, the page follows an upload to done by itself, a phone gets no sideways
scroll, light and dark follow the device, there is no form while actions are off, and the browser asks
nothing of any host but the page's own.

Screenshots of the desktop and phone layouts for the README:
``WATCHFOLDER_SCREENSHOTS=docs python -m pytest tests/test_status_page_browser.py`` writes
``docs/status-page-desktop.png`` and ``docs/status-page-phone.png``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests import browser
from tests.harness import Rig, wait_for
from watchfolder.core import machine
from watchfolder.media import samples
from watchfolder.ops import metrics, report
from watchfolder.ops.health import HealthMonitor
from watchfolder.tiktok import codes

CHUNK = 5_242_880
HOSTILE = "<script>clip.mp4"
ACCOUNTS = {name: {"mode": "inbox"} for name in ("alice", "bob", "carol", "dave")}


def _row(rig: Rig, name: str, state: str | None = None) -> dict[str, Any] | None:
    rows = report.collect(rig.settings, rig.emulator.clock.now())["items"]
    return next((r for r in rows if r["name"] == name and (state is None or r["state"] == state)), None)


def _account(rig: Rig, name: str) -> dict[str, Any]:
    accounts = report.collect(rig.settings, rig.emulator.clock.now())["accounts"]
    return next(a for a in accounts if a["account"] == name)


def _section(driver: Any, account: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, f"account-{account}").text)


def _text_soon(driver: Any, account: str, *wanted: str, absent: str = "", timeout: float = 40) -> str:
    """Wait, without touching the page (it must refresh itself), until an account's section shows every text
    (and not ``absent``)."""
    def shows() -> str | None:
        try:
            text = _section(driver, account)
        except Exception:  # noqa: BLE001 - the page is being reloaded by its refresh: look again
            return None
        return text if all(part in text for part in wanted) and not (absent and absent in text) else None

    return str(wait_for(shows, timeout, interval=0.25, what=f"{account}'s section to show {wanted}"))


def test_every_state_shows_on_the_page_which_follows_an_upload_by_itself(emulator, tmp_path):
    if isinstance(browser.found(), str):
        pytest.skip(str(browser.found()))
    from selenium.webdriver.common.by import By

    rig = Rig(tmp_path / "rig", emulator, accounts=ACCOUNTS,
              overrides={"metrics.listen": "127.0.0.1:0", "upload.chunk_size": CHUNK})
    monitor = HealthMonitor()
    server = metrics.MetricsServer(rig.settings, monitor, clock=emulator.clock.now)
    faults = emulator.faults
    try:
        rig.start([monitor, server])
        origin = f"http://127.0.0.1:{server.port}"
        # carol: TikTok refuses the file (failed, with its code); dave: banned (the account pauses);
        # bob: five drafts pending (waits at the cap); alice: one done, then one slowed upload.
        faults.fail_next("inbox_init", error_code="invalid_params")
        samples.write_mp4(tmp_path / "bad.mp4", size=200_001)
        rig.drop("carol", "bad.mp4", tmp_path / "bad.mp4")
        rig.wait_sidecar("carol", "bad.mp4", folder="failed")
        faults.fail_next("inbox_init", error_code="spam_risk_user_banned_from_posting")
        samples.write_mp4(tmp_path / "held.mp4", size=200_002)
        rig.drop("dave", "held.mp4", tmp_path / "held.mp4")
        wait_for(lambda: _account(rig, "dave")["paused"] and _row(rig, "held.mp4", "waiting"), 20, what="dave paused")
        faults.fail_next("inbox_init", error_code="spam_risk_too_many_pending_share")
        samples.write_mp4(tmp_path / "capped.mp4", size=200_003)
        rig.drop("bob", "capped.mp4", tmp_path / "capped.mp4")
        wait_for(lambda: _row(rig, "capped.mp4", "waiting"), 20, what="bob's item waiting at the cap")
        samples.write_mp4(tmp_path / "clip.mp4", size=200_004)
        rig.drop("alice", HOSTILE, tmp_path / "clip.mp4")
        rig.wait_sidecar("alice", HOSTILE)

        with browser.chromium() as driver:
            faults.fail_next("upload", n=4, kind="slow", delay=3.0)  # each chunk answers after 3 s
            samples.write_mp4(tmp_path / "big.mp4", size=3 * CHUNK + 1000)
            rig.drop("alice", "big.mp4", tmp_path / "big.mp4")
            wait_for(lambda: (row := _row(rig, "big.mp4", "uploading")) and row["bytes_sent"] > 0, 30,
                     what="big.mp4 uploading")
            driver.get(origin + "/")
            assert browser.requested_origins(driver) == {origin}
            uploading = _text_soon(driver, "alice", "Uploading now", "big.mp4", " MB/s", "about ")
            assert HOSTILE in uploading
            assert driver.find_elements(By.TAG_NAME, "script") == []  # the hostile name stayed text
            assert "Done in the last 24 h" in uploading and "signed in until" in uploading

            carol = _section(driver, "carol")
            assert "invalid_params" in carol and codes.POLICY["invalid_params"].advice in carol
            assert "Failed in the last 24 h" in carol and "bad.mp4" in carol
            dave = _section(driver, "dave")
            assert "paused: " + codes.POLICY["spam_risk_user_banned_from_posting"].advice in dave
            assert "held.mp4" in dave
            bob = _section(driver, "bob")
            assert "capped.mp4" in bob and machine.wait_text("pending_share") in bob and "Next try" in bob
            health = driver.find_element(By.ID, "health").text
            assert "running (pid" in health and "Free space (media root)" in health
            assert driver.find_elements(By.TAG_NAME, "form") == []  # actions are off

            # The upload finishes; the page, left alone, moves big.mp4 from "Uploading now" to done.
            done = _text_soon(driver, "alice", "Done in the last 24 h", "big.mp4", absent="Uploading now", timeout=60)
            assert done.count("SEND_TO_USER_INBOX") == 2  # both of alice's items are done
            _screenshot(driver, "desktop")

            browser.phone(driver)
            driver.get(origin + "/")
            wait_for(lambda: driver.execute_script("return document.readyState") == "complete", 10)
            assert driver.execute_script("return window.innerWidth") == 390
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= 390, f"the phone layout scrolls sideways: {width} px wide"
            assert "big.mp4" in _section(driver, "alice")
            _screenshot(driver, "phone")

            # Light by default, dark when the device asks for it.
            background = "return getComputedStyle(document.body).backgroundColor"
            assert driver.execute_script(background) == "rgb(255, 255, 255)"
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                   {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            assert driver.execute_script(background) == "rgb(18, 18, 18)"

            # carol's failed item, opened from the page: its history as a timeline and the raw sidecar.
            driver.find_element(By.ID, "account-carol").find_element(By.LINK_TEXT, "bad.mp4").click()
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "ol.timeline li"), 10, what="the timeline")
            steps = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ol.timeline li")]
            assert any("failed" in step for step in steps) and any("queued" in step for step in steps), steps
            raw = driver.find_element(By.TAG_NAME, "pre").text
            assert '"code": "invalid_params"' in raw and '"result": "failed"' in raw
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 390

            assert browser.requested_origins(driver) == {origin}
    finally:
        rig.stop()


def _body(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except Exception:  # noqa: BLE001 - the page is being reloaded: look again
        return ""


def _screenshot(driver: Any, layout: str) -> None:
    """With WATCHFOLDER_SCREENSHOTS set, save what the browser shows as status-page-LAYOUT.png in that folder."""
    folder = os.environ.get("WATCHFOLDER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"status-page-{layout}.png"))


def test_retry_pause_and_resume_work_through_the_page_when_actions_are_on(emulator, tmp_path):
    if isinstance(browser.found(), str):
        pytest.skip(str(browser.found()))
    from selenium.webdriver.common.by import By

    rig = Rig(tmp_path / "rig", emulator, overrides={"metrics.listen": "127.0.0.1:0", "metrics.actions": True})
    monitor = HealthMonitor()
    server = metrics.MetricsServer(rig.settings, monitor, clock=emulator.clock.now)
    try:
        rig.start([monitor, server])
        emulator.faults.fail_next("inbox_init", error_code="invalid_params")
        samples.write_mp4(tmp_path / "bad.mp4", size=200_000)
        rig.drop("alice", "bad.mp4", tmp_path / "bad.mp4")
        rig.wait_sidecar("alice", "bad.mp4", folder="failed")
        with browser.chromium() as driver:
            origin = f"http://127.0.0.1:{server.port}"
            driver.get(origin + "/")
            forms = driver.find_elements(By.TAG_NAME, "form")
            assert [f.get_attribute("method") for f in forms] == ["post", "post"]  # Pause alice, Retry bad.mp4
            driver.find_element(By.XPATH, "//button[text()='Retry bad.mp4']").click()
            wait_for(lambda: "is back in alice/inbox/" in _body(driver), 30,
                     what="the page saying the item is back")
            # The page goes on refreshing (from /, not the action) and shows the item done this time.
            _text_soon(driver, "alice", "Done in the last 24 h", "bad.mp4", absent="Failed in the last 24 h")
            assert driver.current_url == origin + "/"

            # Pause, then resume, through the page's own buttons.
            driver.find_element(By.XPATH, "//button[text()='Pause alice']").click()
            _text_soon(driver, "alice", "paused by you (watchfolder resume alice)", "Resume alice",
                       absent="Pause alice")
            assert _account(rig, "alice")["paused"] == "user"
            driver.find_element(By.XPATH, "//button[text()='Resume alice']").click()
            wait_for(lambda: "alice: resumed" in _body(driver), 30, what="the page saying alice is resumed")
            assert _account(rig, "alice")["paused"] is None
            assert browser.requested_origins(driver) == {origin}
        assert rig.sidecar("alice", "bad.mp4")["result"] == "done"
    finally:
        rig.stop()
