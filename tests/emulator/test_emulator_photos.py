"""Photo posts through /content/init/: PULL_FROM_URL only, 1..35 verified URLs, really downloaded and
checked by magic bytes, DIRECT_POST or MEDIA_UPLOAD."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from emulator_support import Api, error_of

from tests.emulator_fixture import MediaServer, fake_image
from watchfolder.emulator import Emulator


@pytest.fixture
def verified(emulator: Emulator, media: MediaServer) -> MediaServer:
    emulator.config.verified_url_prefixes.append(media.base_url + "/photos/")
    return media


def photo_body(urls: list[str], mode: str = "DIRECT_POST", cover: int = 0, **post_info: Any) -> dict[str, Any]:
    if mode == "DIRECT_POST":
        post_info.setdefault("privacy_level", "SELF_ONLY")
    return {"media_type": "PHOTO", "post_mode": mode, "post_info": post_info,
            "source_info": {"source": "PULL_FROM_URL", "photo_images": urls, "photo_cover_index": cover}}


def settled(api: Api, publish_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while (data := api.status(publish_id))["status"] == "PROCESSING_DOWNLOAD":
        assert time.monotonic() < deadline, "download did not finish"
        time.sleep(0.01)
    return data


def test_direct_photo_post_downloads_every_image(emulator: Emulator, api: Api, verified: MediaServer) -> None:
    images = [fake_image("jpeg", 5000), fake_image("webp", 7000)]
    urls = [verified.add(f"/photos/{i}.img", image) for i, image in enumerate(images)]
    answer = api.post("content_init", {**photo_body(urls, cover=1, title="trip", description="long text"),
                                       "is_aigc": False})
    assert answer.status_code == 200, answer.text
    publish_id = answer.json()["data"]["publish_id"]
    assert publish_id.startswith("p_pub_url~v2.") and list(answer.json()["data"]) == ["publish_id"]
    assert settled(api, publish_id) == {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [],
                                        "downloaded_bytes": 12000}
    record = emulator.records.publish(publish_id)
    assert record.kind == "photo" and record.mode == "direct" and record.photo_cover_index == 1
    assert record.photo_urls == tuple(urls)
    assert record.photo_sha256s == tuple(hashlib.sha256(image).hexdigest() for image in images)
    assert record.post_info["is_aigc"] is False
    assert emulator.records.completed(hashlib.sha256(images[1]).hexdigest()) == 1
    assert sorted(verified.requests) == ["/photos/0.img", "/photos/1.img"]


def test_media_upload_photos_land_in_the_inbox(emulator: Emulator, api: Api, verified: MediaServer) -> None:
    url = verified.add("/photos/a.jpg", fake_image())
    answer = api.post("content_init", photo_body([url], mode="MEDIA_UPLOAD"))
    publish_id = answer.json()["data"]["publish_id"]
    assert publish_id.startswith("p_inbox_url~v2.")
    assert settled(api, publish_id)["status"] == "SEND_TO_USER_INBOX"


@pytest.mark.parametrize(("change", "expected"), [
    ({"media_type": "VIDEO"}, "media_type"),
    ({"post_mode": "DIRECT POST"}, "post_mode"),
    ({"source_info": {"source": "FILE_UPLOAD", "photo_images": ["x"], "photo_cover_index": 0}}, "PULL_FROM_URL"),
    ({"source_info": {"source": "PULL_FROM_URL", "photo_images": [], "photo_cover_index": 0}}, "photo_images"),
    ({"source_info": {"source": "PULL_FROM_URL", "photo_images": ["u"] * 36, "photo_cover_index": 0}},
     "photo_images"),
    ({"source_info": {"source": "PULL_FROM_URL", "photo_images": ["u"], "photo_cover_index": 1}},
     "photo_cover_index"),
    ({"source_info": {"source": "PULL_FROM_URL", "photo_images": ["u"]}}, "photo_cover_index"),
    ({"post_info": None}, "post info"),
    ({"is_aigc": "yes"}, "is_aigc"),
])
def test_bad_photo_requests_are_invalid_params(api: Api, verified: MediaServer, change: dict[str, Any],
                                               expected: str) -> None:
    body = {**photo_body([verified.base_url + "/photos/a.jpg"]), **change}
    if body["post_info"] is None:
        del body["post_info"]
    answer = api.post("content_init", body)
    assert error_of(answer) == (400, "invalid_params")
    assert expected in answer.json()["error"]["message"]


def test_35_images_are_allowed(api: Api, verified: MediaServer) -> None:
    urls = [verified.add(f"/photos/{i}.jpg", fake_image(size=100)) for i in range(35)]
    answer = api.post("content_init", photo_body(urls, cover=34))
    assert answer.status_code == 200
    assert settled(api, answer.json()["data"]["publish_id"])["downloaded_bytes"] == 3500


def test_title_and_description_lengths_in_utf16_units(api: Api, verified: MediaServer) -> None:
    url = verified.add("/photos/a.jpg", fake_image())
    assert api.post("content_init", photo_body([url], title="😀" * 45)).status_code == 200
    assert error_of(api.post("content_init", photo_body([url], title="😀" * 45 + "a"))) == (400, "invalid_params")
    assert api.post("content_init", photo_body([url], description="d" * 4000)).status_code == 200
    assert error_of(api.post("content_init", photo_body([url], description="d" * 4001))) == (400, "invalid_params")


def test_unverified_photo_urls_are_refused(api: Api, verified: MediaServer) -> None:
    answer = api.post("content_init", photo_body([verified.base_url + "/photos/a.jpg",
                                                  verified.base_url + "/elsewhere/b.jpg"]))
    assert error_of(answer) == (403, "url_ownership_unverified")


@pytest.mark.parametrize(("serve", "reason"), [
    ("png", "file_format_check_failed"),
    ("redirect", "photo_pull_failed"),
    ("missing", "photo_pull_failed"),
    ("huge", "picture_size_check_failed"),
])
def test_images_that_fail_after_init(make_emulator: Callable[..., Emulator], media: MediaServer, serve: str,
                                     reason: str) -> None:
    emu = make_emulator(verified_url_prefixes=[media.base_url + "/"], max_photo_bytes=10_000)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    good = media.add("/good.jpg", fake_image())
    if serve == "png":
        media.add("/bad", fake_image("png"))
    elif serve == "redirect":
        media.redirects["/bad"] = good
    elif serve == "huge":
        media.add("/bad", fake_image(size=10_001))
    publish_id = api.post("content_init", photo_body([good, media.base_url + "/bad"])).json()["data"]["publish_id"]
    data = settled(api, publish_id)
    assert (data["status"], data["fail_reason"]) == ("FAILED", reason)
    assert emu.records.completed(hashlib.sha256(media.files["/good.jpg"]).hexdigest()) == 0


def test_each_post_mode_needs_its_scope(emulator: Emulator, verified: MediaServer) -> None:
    url = verified.add("/photos/a.jpg", fake_image())
    uploader = Api(emulator.base_url or "", emulator.add_user("up", scopes=("video.upload",)).access_token)
    publisher = Api(emulator.base_url or "", emulator.add_user("pub", scopes=("video.publish",)).access_token)
    assert error_of(uploader.post("content_init", photo_body([url]))) == (401, "scope_not_authorized")
    assert error_of(publisher.post("content_init", photo_body([url], mode="MEDIA_UPLOAD"))) == \
        (401, "scope_not_authorized")
    assert uploader.post("content_init", photo_body([url], mode="MEDIA_UPLOAD")).status_code == 200
    assert publisher.post("content_init", photo_body([url])).status_code == 200


def test_direct_photo_privacy_and_caps(make_emulator: Callable[..., Emulator], media: MediaServer) -> None:
    emu = make_emulator(verified_url_prefixes=[media.base_url + "/"], direct_post_daily_cap=1, pending_share_cap=1)
    user = emu.add_user("alice")
    api = Api(emu.base_url or "", user.access_token)
    url = media.add("/a.jpg", fake_image())
    assert error_of(api.post("content_init", photo_body([url], privacy_level="FOLLOWER_OF_CREATOR"))) == \
        (403, "privacy_level_option_mismatch")
    assert api.post("content_init", photo_body([url])).status_code == 200
    assert error_of(api.post("content_init", photo_body([url]))) == (403, "spam_risk_too_many_posts")
    assert api.post("content_init", photo_body([url], mode="MEDIA_UPLOAD")).status_code == 200
    assert error_of(api.post("content_init", photo_body([url], mode="MEDIA_UPLOAD"))) == \
        (403, "spam_risk_too_many_pending_share")
    user.banned = True
    assert error_of(api.post("content_init", photo_body([url], mode="MEDIA_UPLOAD"))) == \
        (403, "spam_risk_user_banned_from_posting")


def test_unaudited_app_photo_rules(make_emulator: Callable[..., Emulator], media: MediaServer) -> None:
    emu = make_emulator(verified_url_prefixes=[media.base_url + "/"], unaudited=True)
    url = media.add("/a.jpg", fake_image())
    public = Api(emu.base_url or "", emu.add_user("public").access_token)
    private = Api(emu.base_url or "", emu.add_user("private", private_account=True).access_token)
    assert error_of(public.post("content_init", photo_body([url]))) == \
        (403, "unaudited_client_can_only_post_to_private_accounts")
    assert private.post("content_init", photo_body([url])).status_code == 200
    # Inbox drafts are not limited by the audit: the creator picks the privacy in the app.
    assert public.post("content_init", photo_body([url], mode="MEDIA_UPLOAD")).status_code == 200


def test_content_init_rate_limit_and_token_errors(emulator: Emulator, api: Api, verified: MediaServer) -> None:
    url = verified.add("/photos/a.jpg", fake_image())
    codes = [api.post("content_init", photo_body([url], mode="MEDIA_UPLOAD")).status_code for _ in range(5)]
    assert codes == [200] * 5
    emulator.config.pending_share_cap = 0  # unlimited, to reach the rate limit
    assert api.post("content_init", photo_body([url], mode="MEDIA_UPLOAD")).status_code == 200
    assert error_of(api.post("content_init", photo_body([url]))) == (429, "rate_limit_exceeded")
    assert error_of(Api(emulator.base_url or "", None).post("content_init", photo_body([url]))) == \
        (401, "access_token_invalid")


def test_photo_direct_post_and_the_active_user_cap(make_emulator: Callable[..., Emulator],
                                                   media: MediaServer) -> None:
    emu = make_emulator(verified_url_prefixes=[media.base_url + "/"], active_user_cap=1)
    url = media.add("/a.jpg", fake_image())
    first = Api(emu.base_url or "", emu.add_user("first").access_token)
    second = Api(emu.base_url or "", emu.add_user("second").access_token)
    assert first.post("content_init", photo_body([url])).status_code == 200
    assert error_of(second.post("content_init", photo_body([url]))) == (403, "reached_active_user_cap")


def test_png_can_be_allowed(make_emulator: Callable[..., Emulator], media: MediaServer) -> None:
    emu = make_emulator(verified_url_prefixes=[media.base_url + "/"], photo_formats=["jpeg", "webp", "png"])
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    url = media.add("/a.png", fake_image("png"))
    publish_id = api.post("content_init", photo_body([url])).json()["data"]["publish_id"]
    assert settled(api, publish_id)["status"] == "PUBLISH_COMPLETE"
