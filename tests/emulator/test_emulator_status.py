"""status/fetch and cancel: the status progression on the injected clock, fail reasons, post ids, and the
errors of both endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from emulator_support import Api, error_of, put_chunks

from tests.emulator_fixture import MediaServer, fake_video
from watchfolder.emulator import Emulator


def upload_inbox(api: Api, data: bytes) -> str:
    answer = api.inbox_file(len(data))
    assert put_chunks(answer.json()["data"]["upload_url"], data, len(data)) == [201]
    return answer.json()["data"]["publish_id"]


def upload_direct(api: Api, data: bytes, privacy: str) -> str:
    answer = api.direct_file(len(data), privacy=privacy)
    assert put_chunks(answer.json()["data"]["upload_url"], data, len(data)) == [201]
    return answer.json()["data"]["publish_id"]


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait for a background download (real time) to reach a state."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_inbox_upload_goes_to_the_inbox_after_processing_and_later_may_be_posted(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(processing_seconds=30, inbox_user_posts_after=600)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    publish_id = upload_inbox(api, fake_video(3000))
    assert api.status(publish_id)["status"] == "PROCESSING_UPLOAD"
    emu.clock.advance(29.9)
    assert api.status(publish_id)["status"] == "PROCESSING_UPLOAD"
    emu.clock.advance(0.1)
    assert api.status(publish_id)["status"] == "SEND_TO_USER_INBOX"
    emu.clock.advance(600)
    assert api.status(publish_id) == {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [],
                                      "uploaded_bytes": 3000}


def test_a_public_direct_post_gets_a_post_id_after_moderation(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(moderation_seconds=60)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    public = upload_direct(api, fake_video(3000), "PUBLIC_TO_EVERYONE")
    private = upload_direct(api, fake_video(3000), "SELF_ONLY")
    assert api.status(public) == {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [],
                                  "uploaded_bytes": 3000}
    emu.clock.advance(60)
    post_ids = api.status(public)["publicaly_available_post_id"]
    assert len(post_ids) == 1 and isinstance(post_ids[0], int) and post_ids[0] > 2**53  # beyond JS doubles
    assert api.status(private)["publicaly_available_post_id"] == []


def test_fail_next_publish_ends_the_task_failed_after_processing(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next_publish("internal")
    failed = upload_inbox(api, fake_video(3000))
    fine = upload_inbox(api, fake_video(3000))
    assert api.status(failed) == {"status": "FAILED", "fail_reason": "internal",
                                  "publicaly_available_post_id": [], "uploaded_bytes": 3000}
    assert api.status(fine)["status"] == "SEND_TO_USER_INBOX"
    assert [r.status for r in emulator.records.publishes] == ["FAILED", "SEND_TO_USER_INBOX"]


def test_revoking_mid_processing_fails_with_auth_removed(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(processing_seconds=10)
    user = emu.add_user("alice")
    api = Api(emu.base_url or "", user.access_token)
    publish_id = upload_inbox(api, fake_video(3000))
    emu.revoke(user.open_id)
    assert emu.records.publish(publish_id).fail_reason == "auth_removed"
    assert error_of(api.post("status", {"publish_id": publish_id})) == (401, "access_token_invalid")


@pytest.mark.parametrize("body", [{"publish_id": "v_inbox_file~v2.1"}, {}, {"publish_id": 5}])
def test_unknown_publish_id(api: Api, body: dict[str, object]) -> None:
    assert error_of(api.post("status", body)) == (400, "invalid_publish_id")
    assert error_of(api.post("cancel", body)) == (400, "invalid_publish_id")


def test_another_users_publish_id_is_not_authorized(emulator: Emulator, api: Api) -> None:
    publish_id = api.inbox_file(100).json()["data"]["publish_id"]
    bob = Api(emulator.base_url or "", emulator.add_user("bob").access_token)
    code = "token_not_authorized_for_specified_publish_id"
    assert error_of(bob.post("status", {"publish_id": publish_id})) == (400, code)
    assert error_of(bob.post("cancel", {"publish_id": publish_id})) == (400, code)


def test_status_and_cancel_need_a_posting_scope(emulator: Emulator, api: Api) -> None:
    publish_id = api.inbox_file(100).json()["data"]["publish_id"]
    viewer = Api(emulator.base_url or "", emulator.add_user("viewer", scopes=("user.info.basic",)).access_token)
    assert error_of(viewer.post("status", {"publish_id": publish_id})) == (401, "scope_not_authorized")
    assert error_of(viewer.post("cancel", {"publish_id": publish_id})) == (401, "scope_not_authorized")
    assert error_of(Api(emulator.base_url or "", "act.x").post("cancel", {"publish_id": publish_id})) == \
        (401, "access_token_invalid")


def test_status_rate_limit_is_30_per_sliding_minute(emulator: Emulator, api: Api) -> None:
    publish_id = api.inbox_file(100).json()["data"]["publish_id"]
    codes = [api.post("status", {"publish_id": publish_id}).status_code for _ in range(30)]
    assert codes == [200] * 30
    emulator.clock.advance(30)
    assert error_of(api.post("status", {"publish_id": publish_id})) == (429, "rate_limit_exceeded")
    emulator.clock.advance(30)  # the first 30 calls leave the 60 s window
    assert api.post("status", {"publish_id": publish_id}).status_code == 200


def test_cancel_stops_a_download_in_flight(emulator: Emulator, api: Api, media: MediaServer) -> None:
    emulator.config.verified_url_prefixes.append(media.base_url + "/")
    url = media.add("/slow.mp4", fake_video(3000))
    media.gate.clear()  # the media server holds the body until the gate opens
    publish_id = api.post("inbox_init", {"source_info": {"source": "PULL_FROM_URL", "video_url": url}}).json()[
        "data"]["publish_id"]
    assert api.status(publish_id) == {"status": "PROCESSING_DOWNLOAD", "publicaly_available_post_id": [],
                                      "downloaded_bytes": 0}
    answer = api.post("cancel", {"publish_id": publish_id})
    assert answer.status_code == 200 and answer.json() == {
        "error": {"code": "ok", "message": "", "log_id": answer.json()["error"]["log_id"]}}
    media.gate.set()
    assert api.status(publish_id)["fail_reason"] == "publish_cancelled"
    assert error_of(api.post("cancel", {"publish_id": publish_id})) == (400, "publish_not_cancellable")


def test_finished_downloads_and_file_uploads_cannot_be_cancelled(emulator: Emulator, api: Api,
                                                                  media: MediaServer) -> None:
    emulator.config.verified_url_prefixes.append(media.base_url + "/")
    url = media.add("/v.mp4", fake_video(3000))
    pulled = api.post("inbox_init", {"source_info": {"source": "PULL_FROM_URL", "video_url": url}}).json()[
        "data"]["publish_id"]
    wait_for(lambda: api.status(pulled)["status"] == "SEND_TO_USER_INBOX")
    assert error_of(api.post("cancel", {"publish_id": pulled})) == (400, "publish_not_cancellable")
    uploading = api.inbox_file(100).json()["data"]["publish_id"]
    assert error_of(api.post("cancel", {"publish_id": uploading})) == (400, "publish_not_cancellable")


def test_cancel_of_file_uploads_can_be_allowed(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(cancel_file_upload=True)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    publish_id = api.inbox_file(100).json()["data"]["publish_id"]
    assert api.post("cancel", {"publish_id": publish_id}).status_code == 200
    assert api.status(publish_id)["fail_reason"] == "publish_cancelled"


def test_pulled_video_is_downloaded_and_hashed(emulator: Emulator, api: Api, media: MediaServer) -> None:
    import hashlib
    emulator.config.verified_url_prefixes.append(media.base_url + "/")
    data = fake_video(3 * 1024 * 1024 + 17)
    url = media.add("/clip.mp4?sig=1", data)
    publish_id = api.post("video_init", {"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": {
        "source": "PULL_FROM_URL", "video_url": url}}).json()["data"]["publish_id"]
    wait_for(lambda: api.status(publish_id)["status"] != "PROCESSING_DOWNLOAD")
    assert api.status(publish_id) == {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [],
                                      "downloaded_bytes": len(data)}
    assert emulator.records.publish(publish_id).sha256 == hashlib.sha256(data).hexdigest()
    assert media.requests == ["/clip.mp4?sig=1"]


@pytest.mark.parametrize("path", ["/moved.mp4", "/missing.mp4"])
def test_a_redirect_or_error_fails_the_pull(emulator: Emulator, api: Api, media: MediaServer, path: str) -> None:
    emulator.config.verified_url_prefixes.append(media.base_url + "/")
    media.add("/real.mp4", fake_video(3000))
    media.redirects["/moved.mp4"] = media.base_url + "/real.mp4"
    publish_id = api.post("inbox_init", {"source_info": {"source": "PULL_FROM_URL",
                                                         "video_url": media.base_url + path}}).json()[
        "data"]["publish_id"]
    wait_for(lambda: api.status(publish_id)["status"] == "FAILED")
    assert api.status(publish_id)["fail_reason"] == "video_pull_failed"
    assert "/real.mp4" not in media.requests  # the redirect was not followed


def test_cancel_rate_limit_is_configurable(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(cancel_per_minute=1)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    publish_id = api.inbox_file(100).json()["data"]["publish_id"]
    assert error_of(api.post("cancel", {"publish_id": publish_id})) == (400, "publish_not_cancellable")
    assert error_of(api.post("cancel", {"publish_id": publish_id})) == (429, "rate_limit_exceeded")


def test_an_injected_5xx_on_init_creates_no_task(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next("video_init", kind="5xx", status=502)
    assert api.direct_file(100).status_code == 502
    assert emulator.records.publishes == []
