"""The chunk PUT on the upload_url: sequential ranges, header checks, progress, expiry, content checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from emulator_support import Api, put_chunks

from tests.emulator_fixture import fake_video
from watchfolder.emulator import Emulator

MIB = 1024 * 1024


def init_inbox(api: Api, size: int, chunk: int) -> tuple[str, str]:
    answer = api.inbox_file(size, chunk, max(1, size // chunk))
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["publish_id"], answer.json()["data"]["upload_url"]


def put(url: str, data: bytes, first: int, total: int, last: int | None = None,
        content_type: str | None = "video/mp4", **headers: str) -> requests.Response:
    last = first + len(data) - 1 if last is None else last
    sent = {"Content-Range": f"bytes {first}-{last}/{total}", **headers}
    if content_type is not None:
        sent["Content-Type"] = content_type
    return requests.put(url, data=data, headers=sent, timeout=30)


def test_tiktok_example_50000123_bytes_in_five_chunks(emulator: Emulator, api: Api) -> None:
    """The media transfer guide's example: four 206s, then 201 for the last 10,000,123 bytes."""
    data = fake_video(50_000_123)
    publish_id, url = init_inbox(api, len(data), 10_000_000)
    progress = []
    with requests.Session() as session:
        for index in range(5):
            first = index * 10_000_000
            last = 50_000_122 if index == 4 else first + 9_999_999
            answer = session.put(url, data=data[first:last + 1], timeout=30, headers={
                "Content-Type": "video/mp4", "Content-Range": f"bytes {first}-{last}/50000123"})
            progress.append((answer.status_code, answer.headers["Content-Range"]))
    assert progress == [(206, "bytes 0-9999999/50000123"), (206, "bytes 0-19999999/50000123"),
                        (206, "bytes 0-29999999/50000123"), (206, "bytes 0-39999999/50000123"),
                        (201, "bytes 0-50000122/50000123")]
    record = emulator.records.publish(publish_id)
    assert record.chunk_ranges[-1] == (40_000_000, 50_000_122)
    assert record.sha256 == hashlib.sha256(data).hexdigest() and record.received_bytes == 50_000_123
    assert api.status(publish_id) == {"status": "SEND_TO_USER_INBOX", "publicaly_available_post_id": [],
                                      "uploaded_bytes": 50_000_123}
    assert emulator.records.completed(hashlib.sha256(data).hexdigest()) == 1


def test_tiktok_example_4MiB_in_one_chunk(emulator: Emulator, api: Api) -> None:
    data = fake_video(4 * MIB)
    publish_id, url = init_inbox(api, len(data), len(data))
    answer = put(url, data, 0, len(data))
    assert answer.status_code == 201 and answer.headers["Content-Range"] == "bytes 0-4194303/4194304"


@pytest.fixture
def two_chunks(api: Api) -> tuple[str, str, bytes]:
    data = fake_video(12 * MIB)
    publish_id, url = init_inbox(api, len(data), 6 * MIB)
    return publish_id, url, data


def test_out_of_order_and_skipped_ranges_get_416(emulator: Emulator, two_chunks: tuple[str, str, bytes]) -> None:
    publish_id, url, data = two_chunks
    second = put(url, data[6 * MIB:], 6 * MIB, len(data))
    assert second.status_code == 416 and second.headers["Content-Range"] == f"bytes */{len(data)}"
    assert put(url, data[:MIB], 0, len(data)).status_code == 416  # not the planned first chunk
    assert put(url, data[:6 * MIB], 0, len(data)).status_code == 206
    assert put(url, data[MIB:7 * MIB], MIB, len(data)).status_code == 416  # overlaps what is in
    assert emulator.records.publish(publish_id).received_bytes == 6 * MIB
    assert [r.error_code for r in emulator.records.requests if r.endpoint == "upload"] == [
        "range_not_satisfiable", "range_not_satisfiable", None, "range_not_satisfiable"]


def test_a_repeated_range_gets_416_by_default(api: Api, two_chunks: tuple[str, str, bytes]) -> None:
    _, url, data = two_chunks
    assert put(url, data[:6 * MIB], 0, len(data)).status_code == 206
    repeated = put(url, data[:6 * MIB], 0, len(data))
    assert repeated.status_code == 416 and repeated.headers["Content-Range"] == f"bytes 0-{6 * MIB - 1}/{len(data)}"
    assert put(url, data[6 * MIB:], 6 * MIB, len(data)).status_code == 201
    assert put(url, data[6 * MIB:], 6 * MIB, len(data)).status_code == 416  # also after the end


def test_a_resent_last_chunk_is_idempotent_when_configured(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(resend_last_chunk="accept")
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    data = fake_video(12 * MIB)
    publish_id, url = init_inbox(api, len(data), 6 * MIB)
    assert put(url, data[:6 * MIB], 0, len(data)).status_code == 206
    assert put(url, data[:6 * MIB], 0, len(data)).status_code == 206
    assert put(url, data[6 * MIB:], 6 * MIB, len(data)).status_code == 201
    assert put(url, data[6 * MIB:], 6 * MIB, len(data)).status_code == 201
    record = emu.records.publish(publish_id)
    assert record.sha256 == hashlib.sha256(data).hexdigest() and len(record.chunk_ranges) == 2


@pytest.mark.parametrize(("content_type", "last", "total", "reason"), [
    (None, None, 5000, "bad_content_type"),
    ("application/octet-stream", None, 5000, "bad_content_type"),
    ("video/mp4", 99, 5000, "content_range_mismatch"),
    ("video/mp4", None, 999, "content_range_mismatch"),
])
def test_bad_headers_get_400(emulator: Emulator, api: Api, content_type: str | None, last: int | None, total: int,
                             reason: str) -> None:
    data = fake_video(5000)
    _, url = init_inbox(api, len(data), len(data))
    answer = put(url, data, 0, total, last=last, content_type=content_type)
    assert answer.status_code == 400
    assert emulator.records.requests[-1].error_code == reason


def test_missing_content_range_or_length_gets_400(api: Api) -> None:
    data = fake_video(5000)
    _, url = init_inbox(api, len(data), len(data))
    assert requests.put(url, data=data, headers={"Content-Type": "video/mp4"}, timeout=5).status_code == 400
    chunked = requests.put(url, data=iter([data]), timeout=5, headers={
        "Content-Type": "video/mp4", "Content-Range": f"bytes 0-4999/{len(data)}"})
    assert chunked.status_code == 400
    assert put(url, data, 0, len(data)).status_code == 201  # the task is unharmed


def test_the_webm_and_mov_content_types_are_accepted(api: Api) -> None:
    for container, content_type in (("webm", "video/webm"), ("mov", "video/quicktime")):
        data = fake_video(3000, container)
        publish_id, url = init_inbox(api, len(data), len(data))
        assert put(url, data, 0, len(data), content_type=content_type).status_code == 201
        assert api.status(publish_id)["status"] == "SEND_TO_USER_INBOX"


def test_unknown_upload_or_wrong_token_gets_404(emulator: Emulator, api: Api) -> None:
    data = fake_video(5000)
    _, url = init_inbox(api, len(data), len(data))
    assert put(url.replace("upload_token=", "upload_token=x"), data, 0, len(data)).status_code == 404
    assert put(f"{emulator.base_url}/video/?upload_id=nope&upload_token=nope", data, 0, len(data)).status_code == 404


def test_upload_url_expires_after_an_hour(emulator: Emulator, api: Api) -> None:
    data = fake_video(12 * MIB)
    publish_id, url = init_inbox(api, len(data), 6 * MIB)
    assert put(url, data[:6 * MIB], 0, len(data)).status_code == 206
    emulator.clock.advance(3600)
    expired = put(url, data[6 * MIB:], 6 * MIB, len(data))
    assert expired.status_code == 403 and emulator.records.requests[-1].error_code == "upload_url_expired"
    # Unconfirmed what status TikTok then shows; by default the task just stays where it was.
    assert api.status(publish_id)["status"] == "PROCESSING_UPLOAD"


def test_expire_upload_url_from_python_and_the_option_to_fail_the_task(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(expired_upload_fail_reason="internal")
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    data = fake_video(5000)
    publish_id, url = init_inbox(api, len(data), len(data))
    emu.expire_upload_url(publish_id)
    assert put(url, data, 0, len(data)).status_code == 403
    assert api.status(publish_id) == {"status": "FAILED", "fail_reason": "internal",
                                      "publicaly_available_post_id": [], "uploaded_bytes": 0}


@pytest.mark.parametrize(("data", "reason"), [
    (b"GIF89a" + bytes(3000), "file_format_check_failed"),
    (fake_video(5000, duration_sec=601), "duration_check_failed"),
])
def test_content_checks_fail_the_task_after_upload(emulator: Emulator, api: Api, data: bytes, reason: str) -> None:
    publish_id, url = init_inbox(api, len(data), len(data))
    assert put(url, data, 0, len(data)).status_code == 201  # the upload itself is fine
    assert api.status(publish_id)["status"] == "FAILED"
    assert api.status(publish_id)["fail_reason"] == reason
    assert emulator.records.completed(hashlib.sha256(data).hexdigest()) == 0


def test_content_checks_can_be_turned_off(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(check_content=False)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    data = bytes(5000)
    publish_id, url = init_inbox(api, len(data), len(data))
    assert put(url, data, 0, len(data)).status_code == 201
    assert api.status(publish_id)["status"] == "SEND_TO_USER_INBOX"


def test_status_reports_bytes_received_so_far(api: Api, two_chunks: tuple[str, str, bytes]) -> None:
    publish_id, url, data = two_chunks
    assert api.status(publish_id)["uploaded_bytes"] == 0
    put(url, data[:6 * MIB], 0, len(data))
    assert api.status(publish_id) == {"status": "PROCESSING_UPLOAD", "publicaly_available_post_id": [],
                                      "uploaded_bytes": 6 * MIB}


def test_a_5xx_or_dropped_chunk_can_be_sent_again(emulator: Emulator, api: Api,
                                                   two_chunks: tuple[str, str, bytes]) -> None:
    publish_id, url, data = two_chunks
    emulator.faults.fail_next("upload", kind="5xx", status=503)
    assert put(url, data[:6 * MIB], 0, len(data)).status_code == 503
    emulator.faults.fail_next("upload", kind="drop")
    with pytest.raises(requests.ConnectionError):
        put(url, data[:6 * MIB], 0, len(data))
    assert put_chunks(url, data, 6 * MIB) == [206, 201]
    assert emulator.records.publish(publish_id).sha256 == hashlib.sha256(data).hexdigest()
    assert [r.http_status for r in emulator.records.requests if r.endpoint == "upload"] == [503, 0, 206, 201]


def test_a_revoked_grant_ends_the_upload(emulator: Emulator, api: Api, two_chunks: tuple[str, str, bytes]) -> None:
    publish_id, url, data = two_chunks
    put(url, data[:6 * MIB], 0, len(data))
    emulator.revoke(emulator.records.publish(publish_id).open_id)
    assert put(url, data[6 * MIB:], 6 * MIB, len(data)).status_code == 404
    assert emulator.records.publish(publish_id).fail_reason == "auth_removed"


def test_received_bytes_are_kept_only_when_asked(make_emulator: Callable[..., Emulator]) -> None:
    for keep in (False, True):
        emu = make_emulator(keep_uploads=keep)
        api = Api(emu.base_url or "", emu.add_user("alice").access_token)
        data = fake_video(5000)
        publish_id, url = init_inbox(api, len(data), len(data))
        put(url, data, 0, len(data))
        path = emu.upload_file(publish_id)
        if keep:
            assert path is not None and Path(path).read_bytes() == data
        else:
            assert path is None
