"""Fault injection from Python and through the loopback control endpoint, and the request records."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from emulator_support import PATHS, Api, error_of, put_chunks

from tests.emulator_fixture import fake_video
from watchfolder.emulator import Emulator, User


def control(emu: Emulator, method: str, action: str, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(method, f"{emu.base_url}/_emulator/{action}", json=body, timeout=5)


def test_5xx_fault_fails_the_next_n_calls_then_the_endpoint_recovers(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next("creator_info", n=2, kind="5xx")
    assert error_of(api.post("creator_info")) == (500, "internal_error")
    assert error_of(api.post("creator_info")) == (500, "internal_error")
    assert api.post("creator_info").status_code == 200
    emulator.faults.fail_next("status", kind="5xx", status=503)
    assert api.post("status", {"publish_id": "x"}).status_code == 503


def test_429_fault(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next("inbox_init", kind="429")
    assert error_of(api.inbox_file(100)) == (429, "rate_limit_exceeded")
    assert api.inbox_file(100).status_code == 200


def test_drop_fault_closes_the_connection_without_an_answer(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next("video_init", kind="drop")
    with pytest.raises(requests.ConnectionError):
        api.direct_file(100)
    assert api.direct_file(100).status_code == 200
    assert [(r.endpoint, r.http_status, r.error_code) for r in emulator.records.requests] == [
        ("video_init", 0, "connection_dropped"), ("video_init", 200, None)]


def test_slow_fault_delays_the_answer_in_real_time(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next("creator_info", kind="slow", delay=0.3)
    with pytest.raises(requests.Timeout):
        api.session.post(f"{emulator.base_url}{PATHS['creator_info']}", timeout=0.1,
                         headers={"Authorization": f"Bearer {api.token}"})
    emulator.faults.fail_next("creator_info", kind="slow", delay=0.2)
    started = time.monotonic()
    assert api.post("creator_info").status_code == 200  # slow, then a normal answer
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(("endpoint", "code", "status"), [
    ("creator_info", "spam_risk_too_many_posts", 200),
    ("creator_info", "reached_active_user_cap", 200),
    ("inbox_init", "spam_risk_too_many_pending_share", 403),
    ("video_init", "spam_risk_too_many_posts", 403),
    ("content_init", "app_version_check_failed", 400),
    ("content_init", "internal_error", 500),
    ("cancel", "url_ownership_unverified", 403),
    ("status", "token_not_authorized_for_specified_publish_id", 400),
])
def test_error_code_fault_uses_the_documented_status(emulator: Emulator, api: Api, endpoint: str, code: str,
                                                      status: int) -> None:
    emulator.faults.fail_next(endpoint, error_code=code)
    answer = api.post(endpoint, {})
    assert error_of(answer) == (status, code)
    assert emulator.records.requests[-1].error_code == code


def test_oauth_faults_keep_the_flat_shape(emulator: Emulator, alice: User) -> None:
    form = {"client_key": emulator.config.client_key, "client_secret": emulator.config.client_secret,
            "grant_type": "refresh_token", "refresh_token": alice.refresh_token}
    url = f"{emulator.base_url}{PATHS['token']}"
    emulator.faults.fail_next("token", error_code="temporarily_unavailable")
    answer = requests.post(url, data=form, timeout=5)
    assert answer.status_code == 200 and answer.json()["error"] == "temporarily_unavailable"
    emulator.faults.fail_next("token", kind="5xx")
    answer = requests.post(url, data=form, timeout=5)
    assert answer.status_code == 500 and answer.json()["error"] == "server_error"
    assert requests.post(url, data=form, timeout=5).json()["refresh_token"].startswith("rft.")


def test_authorize_fault_redirects_with_the_error(emulator: Emulator, alice: User) -> None:
    emulator.faults.fail_next("authorize", error_code="access_denied")
    answer = requests.get(f"{emulator.base_url}{PATHS['authorize']}", allow_redirects=False, timeout=5, params={
        "client_key": emulator.config.client_key, "redirect_uri": "http://127.0.0.1:8765/cb/", "state": "s",
        "scope": "user.info.basic", "response_type": "code", "code_challenge": "c" * 64,
        "code_challenge_method": "S256"})
    params = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert answer.status_code == 302 and params["error"] == ["access_denied"] and params["state"] == ["s"]


@pytest.mark.parametrize("call", [
    lambda faults: faults.fail_next("nowhere"),
    lambda faults: faults.fail_next("status", kind="boom"),
    lambda faults: faults.fail_next("status", error_code="spam_risk_too_many_pending_share"),
    lambda faults: faults.fail_next("token", error_code="invalid_params"),
    lambda faults: faults.fail_next("upload", error_code="internal_error"),
    lambda faults: faults.fail_next("status", kind="5xx", status=404),
    lambda faults: faults.fail_next_publish("bad_luck"),
])
def test_impossible_faults_are_refused(emulator: Emulator, call: Any) -> None:
    with pytest.raises(ValueError):
        call(emulator.faults)


def test_requests_are_recorded_with_whose_token_and_the_outcome(emulator: Emulator, alice: User, api: Api) -> None:
    data = fake_video(3000)
    answer = api.inbox_file(len(data))
    publish_id = answer.json()["data"]["publish_id"]
    put_chunks(answer.json()["data"]["upload_url"], data, len(data))
    api.post("status", {"publish_id": "nope"})
    Api(emulator.base_url or "", "act.who").post("creator_info")
    assert [(r.endpoint, r.open_id, r.http_status, r.error_code, r.publish_id) for r in emulator.records.requests] == [
        ("inbox_init", alice.open_id, 200, None, publish_id),
        ("upload", alice.open_id, 201, None, publish_id),
        ("status", alice.open_id, 400, "invalid_publish_id", None),
        ("creator_info", None, 401, "access_token_invalid", None),
    ]
    assert all(r.at == emulator.clock.now() for r in emulator.records.requests)


def test_control_endpoint_drives_the_emulator_from_another_process(emulator: Emulator) -> None:
    user = control(emulator, "POST", "users", {"name": "zoe", "private_account": True,
                                               "access_ttl": 30 * 86400}).json()
    assert user["open_id"] and user["access_token"].startswith("act.") and user["private_account"] is True
    api = Api(emulator.base_url or "", user["access_token"])

    assert control(emulator, "POST", "faults", {"endpoint": "creator_info", "kind": "429"}).json() == {
        "pending": {"creator_info": 1}}
    assert api.post("creator_info").status_code == 429
    control(emulator, "POST", "faults", {"endpoint": "inbox_init", "error_code": "spam_risk_too_many_pending_share"})
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_too_many_pending_share")
    control(emulator, "POST", "faults", {"fail_reason": "spam_risk_text"})
    data = fake_video(3000)
    init = api.inbox_file(len(data)).json()["data"]
    put_chunks(init["upload_url"], data, len(data))
    assert api.status(init["publish_id"])["fail_reason"] == "spam_risk_text"

    before = emulator.clock.now()
    assert control(emulator, "POST", "clock/advance", {"seconds": 86400}).json()["now"] == before + 86400
    assert control(emulator, "GET", "clock").json()["now"] == before + 86400

    user2 = control(emulator, "POST", "users", {"name": "yan", "access_ttl": 10}).json()
    assert control(emulator, "POST", "tokens/expire", {"token": user2["access_token"]}).json() == {"expired": 1}
    assert error_of(Api(emulator.base_url or "", user2["access_token"]).post("creator_info"))[1] == \
        "access_token_invalid"
    second = api.inbox_file(100).json()["data"]
    assert control(emulator, "POST", "uploads/expire", {"publish_id": second["publish_id"]}).status_code == 200
    assert requests.put(second["upload_url"], data=b"x" * 100, timeout=5, headers={
        "Content-Type": "video/mp4", "Content-Range": "bytes 0-99/100"}).status_code == 403
    assert control(emulator, "POST", "tokens/revoke", {"open_id": user["open_id"]}).status_code == 200
    assert api.post("creator_info").status_code == 401

    records = control(emulator, "GET", "records").json()
    assert set(records) == {"requests", "publishes", "refreshes"}
    assert records["publishes"][0]["fail_reason"] == "spam_risk_text"
    assert {"endpoint": "creator_info", "http_status": 429}.items() <= records["requests"][0].items()
    assert len(control(emulator, "GET", "users").json()) == 2


def test_control_endpoint_rejects_bad_requests(emulator: Emulator) -> None:
    assert control(emulator, "POST", "faults", {"endpoint": "nowhere"}).status_code == 400
    assert control(emulator, "POST", "users", {}).status_code == 400
    assert control(emulator, "POST", "tokens/expire", {}).status_code == 400
    assert control(emulator, "POST", "teleport", {}).status_code == 404
    assert control(emulator, "POST", "clock/advance", {"seconds": -1}).status_code == 400
    bad_json = requests.post(f"{emulator.base_url}/_emulator/faults", data=b"{", timeout=5)
    assert bad_json.status_code == 400
    emulator.faults.fail_next("status", n=3)
    assert control(emulator, "DELETE", "faults").json() == {"pending": {}}
    assert emulator.faults.pending() == {}


def test_control_is_not_recorded_and_unknown_paths_are_404(emulator: Emulator, api: Api) -> None:
    control(emulator, "GET", "records")
    assert requests.get(f"{emulator.base_url}/v2/nothing/", timeout=5).status_code == 404
    assert requests.get(f"{emulator.base_url}{PATHS['status']}", timeout=5).status_code == 405
    assert emulator.records.requests == []


def test_request_records_keep_the_newest_when_capped(make_emulator: Any) -> None:
    emu = make_emulator(max_request_records=3)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    for _ in range(4):
        api.post("creator_info")
    api.post("status", {"publish_id": "x"})
    assert [r.endpoint for r in emu.records.requests] == ["creator_info", "creator_info", "status"]
