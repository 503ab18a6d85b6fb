"""A real headless Chromium driven by selenium, for the status page's tests.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); ``browser_or_skip`` skips
with the reason when either cannot be found, the only case a browser test may skip.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-default-apps", "--disable-extensions", "--no-default-browser-check")


def found() -> tuple[str, str] | str:
    """(the browser, its driver), or why there is none."""
    try:
        import selenium  # noqa: F401 - only whether it can be imported
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return "no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
    return browser, driver


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile folder, removed after), its performance log on."""
    where = found()
    if isinstance(where, str):
        pytest.skip(where)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = where
    with tempfile.TemporaryDirectory(prefix="wf-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


def phone(driver: Any, width: int = 390, height: int = 844) -> None:
    """Make the page's viewport a phone's (its width in CSS pixels, touch, a phone's pixel ratio)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 3, "mobile": True})


LOCAL_SCHEMES = ("chrome", "data", "about", "blob")  # the browser's own pages and inline data: no network


def requested_origins(driver: Any) -> set[str]:
    """The origins of every request that could leave the browser since the last call (from its performance log:
    everything but the browser's own ``chrome:`` pages and inline ``data:``/``about:``/``blob:`` URLs)."""
    origins = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = urlsplit(message["params"]["request"]["url"])
            if url.scheme in LOCAL_SCHEMES:
                continue
            origins.add(f"{url.scheme}://{url.netloc}" if url.netloc else f"{url.scheme}:")
    return origins
