"""creator_info, the per-token sliding-minute rate limits, the 24 h caps and the unaudited-app rules, all
moved through time with the injected clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from emulator_support import Api, error_of, put_chunks

from tests.emulator_fixture import fake_video
from watchfolder.emulator import Emulator, User

DAY = 86400
MONTH = 30 * DAY  # tokens that outlive the day these tests jump over


def creator(emu: Emulator, name: str = "carol", private_account: bool = False) -> Api:
    user = emu.add_user(name, access_ttl=MONTH, private_account=private_account)
    return Api(emu.base_url or "", user.access_token)


def test_creator_info_describes_the_creator(emulator: Emulator, alice: User, api: Api) -> None:
    answer = api.post("creator_info")  # no body at all, as some clients send
    assert answer.status_code == 200 and answer.json()["error"]["code"] == "ok"
    assert answer.json()["data"] | {"creator_avatar_url": "x"} == {
        "creator_avatar_url": "x", "creator_username": "alice", "creator_nickname": "Alice",
        "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
        "comment_disabled": False, "duet_disabled": False, "stitch_disabled": False,
        "max_video_post_duration_sec": 600}
    assert api.post("creator_info", {}).status_code == 200


def test_creator_info_of_a_private_account(emulator: Emulator) -> None:
    user = emulator.add_user("priv", private_account=True, max_video_post_duration_sec=180)
    data = Api(emulator.base_url or "", user.access_token).post("creator_info").json()["data"]
    assert data["privacy_level_options"] == ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    assert data["duet_disabled"] is True and data["stitch_disabled"] is True
    assert data["max_video_post_duration_sec"] == 180


def test_creator_info_token_and_scope_errors(emulator: Emulator, alice: User) -> None:
    assert error_of(Api(emulator.base_url or "", None).post("creator_info")) == (401, "access_token_invalid")
    emulator.expire_access_token(alice.access_token)
    assert error_of(Api(emulator.base_url or "", alice.access_token).post("creator_info")) == \
        (401, "access_token_invalid")
    uploader = emulator.add_user("up", scopes=("user.info.basic", "video.upload"))
    assert error_of(Api(emulator.base_url or "", uploader.access_token).post("creator_info")) == \
        (401, "scope_not_authorized")


def test_creator_info_reports_caps_with_http_200(make_emulator: Callable[..., Emulator]) -> None:
    """On creator_info "cannot post now" is HTTP 200; the same codes are 403 on the init endpoints."""
    emu = make_emulator(direct_post_daily_cap=1, active_user_cap=1)
    alice, bob = emu.add_user("alice", access_ttl=MONTH), emu.add_user("bob")
    api = Api(emu.base_url or "", alice.access_token)
    assert api.direct_file(100).status_code == 200
    assert error_of(api.post("creator_info")) == (200, "spam_risk_too_many_posts")
    assert error_of(api.direct_file(100)) == (403, "spam_risk_too_many_posts")
    bob_api = Api(emu.base_url or "", bob.access_token)
    assert error_of(bob_api.post("creator_info")) == (200, "reached_active_user_cap")
    assert error_of(bob_api.direct_file(100)) == (403, "reached_active_user_cap")
    bob.banned = True
    assert error_of(bob_api.post("creator_info")) == (200, "spam_risk_user_banned_from_posting")
    emu.clock.advance(DAY)
    assert api.post("creator_info").json()["error"]["code"] == "ok"


def test_creator_info_rate_limit_is_20_per_minute(emulator: Emulator, api: Api) -> None:
    assert [api.post("creator_info").status_code for _ in range(21)] == [200] * 20 + [429]
    assert error_of(api.post("creator_info")) == (429, "rate_limit_exceeded")
    emulator.clock.advance(60)
    assert api.post("creator_info").status_code == 200


def test_init_rate_limit_is_6_per_minute_per_token_and_endpoint(emulator: Emulator, alice: User, api: Api) -> None:
    emulator.config.pending_share_cap = 0
    assert [api.inbox_file(100).status_code for _ in range(7)] == [200] * 6 + [429]
    assert api.direct_file(100).status_code == 200  # each endpoint has its own window
    bob = Api(emulator.base_url or "", emulator.add_user("bob").access_token)
    assert bob.inbox_file(100).status_code == 200  # and each token
    emulator.clock.advance(59.9)
    assert api.inbox_file(100).status_code == 429
    emulator.clock.advance(0.1)
    assert api.inbox_file(100).status_code == 200


def test_a_refused_call_does_not_fill_the_window(emulator: Emulator, api: Api) -> None:
    """Calls refused with 429 are not counted: a client that backs off gets through a minute later."""
    emulator.config.pending_share_cap = 0
    for _ in range(6):
        api.inbox_file(100)
    emulator.clock.advance(30)
    assert [api.inbox_file(100).status_code for _ in range(10)] == [429] * 10
    emulator.clock.advance(30)
    assert api.inbox_file(100).status_code == 200


@pytest.mark.parametrize(("limit", "calls", "expected_429"), [(2, 3, 1), (0, 25, 0)])
def test_rate_limits_are_configurable(make_emulator: Callable[..., Emulator], limit: int, calls: int,
                                      expected_429: int) -> None:
    emu = make_emulator(init_per_minute=limit, pending_share_cap=0, creator_info_per_minute=limit)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    assert [api.inbox_file(100).status_code for _ in range(calls)].count(429) == expected_429
    assert [api.post("creator_info").status_code for _ in range(calls)].count(429) == expected_429


def test_pending_share_cap_is_5_per_rolling_day(emulator: Emulator) -> None:
    api = creator(emulator)
    for _ in range(5):
        assert api.inbox_file(100).status_code == 200
        emulator.clock.advance(3600)
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_too_many_pending_share")
    emulator.clock.advance(DAY - 5 * 3600)  # the first draft is now exactly a day old
    assert api.inbox_file(100).status_code == 200
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_too_many_pending_share")


def test_failed_drafts_do_not_count_as_pending(emulator: Emulator, api: Api) -> None:
    emulator.faults.fail_next_publish("file_format_check_failed", n=2)
    for _ in range(2):
        answer = api.inbox_file(3000)
        assert put_chunks(answer.json()["data"]["upload_url"], fake_video(3000), 3000) == [201]
    emulator.clock.advance(60)  # out of the init rate limit's window
    for _ in range(5):
        assert api.inbox_file(100).status_code == 200
    emulator.clock.advance(60)
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_too_many_pending_share")


def test_direct_post_daily_cap_is_15_by_default(emulator: Emulator) -> None:
    api = creator(emulator)
    for _ in range(15):
        assert api.direct_file(100).status_code == 200
        emulator.clock.advance(60)
    assert error_of(api.direct_file(100)) == (403, "spam_risk_too_many_posts")
    assert api.inbox_file(100).status_code == 200  # drafts are capped separately
    emulator.clock.advance(DAY - 15 * 60)
    assert api.direct_file(100).status_code == 200


def test_unaudited_app_posts_only_self_only_to_private_accounts(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(unaudited=True)
    public = Api(emu.base_url or "", emu.add_user("public").access_token)
    private = Api(emu.base_url or "", emu.add_user("private", private_account=True).access_token)
    code = "unaudited_client_can_only_post_to_private_accounts"
    assert error_of(public.direct_file(100, privacy="SELF_ONLY")) == (403, code)
    assert error_of(private.direct_file(100, privacy="MUTUAL_FOLLOW_FRIENDS")) == (403, code)
    assert private.direct_file(100, privacy="SELF_ONLY").status_code == 200
    assert public.inbox_file(100).status_code == 200  # the inbox flow is not limited by the audit


def test_unaudited_privacy_error_code_is_an_option(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(unaudited=True, unaudited_privacy_error="privacy_level_option_mismatch")
    private = Api(emu.base_url or "", emu.add_user("private", private_account=True).access_token)
    assert error_of(private.direct_file(100, privacy="MUTUAL_FOLLOW_FRIENDS")) == \
        (403, "privacy_level_option_mismatch")


def test_unaudited_app_has_at_most_5_posting_users_a_day(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(unaudited=True)
    users = [creator(emu, f"u{i}", private_account=True) for i in range(6)]
    assert [u.direct_file(100).status_code for u in users[:5]] == [200] * 5
    assert error_of(users[5].direct_file(100)) == (403, "reached_active_user_cap")
    assert users[0].direct_file(100).status_code == 200  # users already active may go on
    emu.clock.advance(DAY)
    assert users[5].direct_file(100).status_code == 200


def test_pending_shares_can_count_drafts_held_rather_than_a_rolling_day(
        make_emulator: Callable[..., Emulator]) -> None:
    """The "held" reading: a draft stops counting once the creator posts it, and never ages out."""
    emu = make_emulator(pending_share_mode="held", pending_share_cap=2, inbox_user_posts_after=3600)
    api = creator(emu)
    for _ in range(2):
        answer = api.inbox_file(3000)
        assert put_chunks(answer.json()["data"]["upload_url"], fake_video(3000), 3000) == [201]
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_too_many_pending_share")
    emu.clock.advance(3600)  # the creator posts both drafts
    assert api.inbox_file(100).status_code == 200
    assert api.inbox_file(100).status_code == 200
    emu.clock.advance(3 * DAY)  # never uploaded, so never posted: still held
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_too_many_pending_share")
