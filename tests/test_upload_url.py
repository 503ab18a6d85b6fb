"""Upload URL sanity: with TikTok's API, an upload_url that is not https on a TikTok host gets no byte."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator_fixture import running_emulator
from watchfolder.core.errors import TikTokError
from watchfolder.core.model import Action
from watchfolder.emulator.clock import OffsetClock
from watchfolder.tiktok import chunks, uploadurl
from watchfolder.tiktok.client import TikTokClient

API = "https://open.tiktokapis.com"


@pytest.mark.parametrize("url", [
    "https://open-upload.tiktokapis.com/video/?upload_id=1&upload_token=t",
    "https://upload.us.tiktokapis.com/upload/?upload_id=1",
    "https://open-upload.TikTokAPIs.com./video/?x",
])
def test_https_on_a_tiktok_host_passes(url: str) -> None:
    uploadurl.check(API, url)


@pytest.mark.parametrize("url", [
    "http://open-upload.tiktokapis.com/video/?upload_id=1",   # downgraded to plain http
    "https://open-upload.tiktokapis.com.evil.example/video/",  # a look-alike host
    "https://eviltiktokapis.com/video/",
    "https://203.0.113.9/video/",
])
def test_anything_else_is_refused_for_tiktoks_api(url: str) -> None:
    with pytest.raises(TikTokError) as caught:
        uploadurl.check(API, url)
    assert caught.value.code == "upload_url_untrusted" and caught.value.action is Action.FAIL
    assert "nothing was sent" in caught.value.message and "upload_token" not in caught.value.message


def test_another_api_such_as_the_emulator_is_not_judged() -> None:
    uploadurl.check("http://127.0.0.1:8080", "http://127.0.0.1:8080/video/?upload_id=1")


def test_a_refused_upload_url_never_gets_a_byte() -> None:
    """The emulator hands out http://127.0.0.1 upload URLs; a client that counts 127.0.0.1 as TikTok's
    domain refuses the init's answer, and the emulator records no PUT."""
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False) as emulator:
        user: Any = emulator.add_user("alice", scopes=("video.upload",))
        client = TikTokClient(emulator.base_url or "", tiktok_domains=("127.0.0.1",))
        with pytest.raises(TikTokError) as caught:
            client.init_inbox_video(user.access_token, plan=chunks.plan(1_000_000))
        client.close()
        assert caught.value.code == "upload_url_untrusted"
        endpoints = [r.endpoint for r in emulator.records.requests]
    assert endpoints == ["inbox_init"]
