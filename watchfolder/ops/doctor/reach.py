"""What must be reachable from outside: the media host's URL (TikTok pulls photos through it), and
this machine's clock compared with TikTok's."""

from __future__ import annotations

import datetime
import email.utils
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from watchfolder.config.settings import Settings
from watchfolder.mediahost.host import MediaHost
from watchfolder.ops.doctor.findings import FAIL, OK, WARN, Check, utc
from watchfolder.tiktok.oauth import API_BASE_URL

CLOCK_SKEW_SECONDS = 60.0


def media_host(settings: Settings, offline: bool, timeout: float) -> Iterator[Check]:
    host = settings.media_host
    if not host.url_prefix:
        return
    if offline:
        yield Check("media_host", OK, f"{host.url_prefix} not probed (--offline)")
        return
    # The daemon's own staging folder when it exists (a running daemon serves it), else a temporary one.
    temporary = None if settings.state_dir.is_dir() else tempfile.mkdtemp(prefix="watchfolder-check-")
    staging = Path(temporary) / "staging" if temporary else settings.state_dir / "staging"
    try:
        media = MediaHost(url_prefix=host.url_prefix, staging_dir=staging, serve=host.serve,
                          publish_dir=host.publish_dir)
        try:
            media.start()
        except OSError:
            pass  # the port is taken, most likely by the running daemon, whose server then answers the probe
        try:
            reachable, message = media.probe(timeout=timeout)
        finally:
            media.stop()
    except (OSError, ValueError) as exc:
        reachable, message = False, f"cannot stage the probe file: {exc}"
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    if not reachable:
        yield Check("media_host", FAIL, f"{message}. TikTok fetches photos (and pull_from_url videos) through "
                    "url_prefix: check the proxy or web server in front of it")
    elif "production needs" in message and settings.tiktok.api_base_url == API_BASE_URL:
        yield Check("media_host", WARN, message)
    else:
        yield Check("media_host", OK, message)


def clock(settings: Settings, now: float, offline: bool, timeout: float) -> Check:
    year = datetime.datetime.fromtimestamp(now, datetime.UTC).year
    if year < 2024:
        return Check("clock", FAIL, f"this machine's clock says {utc(now)}: set the time (timedatectl set-ntp true)")
    if offline:
        return Check("clock", OK, f"{utc(now)} (not compared with TikTok: --offline)")
    host = urlsplit(settings.tiktok.api_base_url).netloc
    try:
        answer: Any = requests.head(settings.tiktok.api_base_url + "/", timeout=timeout, allow_redirects=False)
        theirs = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    except (requests.RequestException, KeyError, TypeError, ValueError) as exc:
        return Check("clock", WARN, f"could not compare the clock with {host} ({type(exc).__name__})")
    skew = now - theirs
    if abs(skew) > CLOCK_SKEW_SECONDS:
        return Check("clock", WARN, f"this machine's clock is {skew:+.0f} s off {host}'s; token and upload-URL "
                     "lifetimes are judged by TikTok's clock: turn on time sync (timedatectl set-ntp true)")
    return Check("clock", OK, f"within {abs(skew):.0f} s of {host}")
