"""Login Kit: the authorize page, code exchange with TikTok's hex PKCE, refresh with rotation, revoke,
and /v2/user/info/."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from emulator_support import PATHS, Api, error_of

from watchfolder.emulator import Emulator, User

REDIRECT = "http://127.0.0.1:8765/callback/"


def hex_challenge(verifier: str) -> str:
    return hashlib.sha256(verifier.encode()).hexdigest()


def authorize(emu: Emulator, challenge: str | None, *, redirect_uri: str = REDIRECT,
              scope: str = "user.info.basic,video.upload", **extra: str) -> requests.Response:
    params = {"client_key": emu.config.client_key, "scope": scope, "redirect_uri": redirect_uri,
              "state": "xyz-state", "response_type": "code"}
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return requests.get(f"{emu.base_url}{PATHS['authorize']}", params=params, allow_redirects=False, timeout=5)


def callback_params(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT.split("?")[0]) or "callback" in location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def token_call(emu: Emulator, **form: str) -> requests.Response:
    fields = {"client_key": emu.config.client_key, "client_secret": emu.config.client_secret, **form}
    return requests.post(f"{emu.base_url}{PATHS['token']}", data=fields, timeout=5)


def login(emu: Emulator, scope: str = "user.info.basic,video.upload") -> dict[str, object]:
    verifier = secrets.token_urlsafe(48)
    params = callback_params(authorize(emu, hex_challenge(verifier), scope=scope))
    answer = token_call(emu, code=params["code"], grant_type="authorization_code", redirect_uri=REDIRECT,
                        code_verifier=verifier)
    assert answer.status_code == 200 and "access_token" in answer.json(), answer.text
    return answer.json()


def oauth_error(answer: requests.Response) -> str:
    """OAuth errors are flat and come with HTTP 200, as TikTok's do."""
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"error", "error_description", "log_id"}
    return body["error"]


def test_login_with_hex_pkce_gives_a_flat_token_answer(emulator: Emulator, alice: User) -> None:
    """The authorize page approves at once; the code (with characters that need URL-decoding) exchanges
    for a flat token body with TikTok's fields."""
    verifier = secrets.token_urlsafe(48)
    answer = authorize(emulator, hex_challenge(verifier))
    assert "%2A" in answer.headers["Location"] or "%21" in answer.headers["Location"]
    params = callback_params(answer)
    assert params["state"] == "xyz-state"
    assert params["scopes"] == "user.info.basic,video.upload"

    tokens = token_call(emulator, code=params["code"], grant_type="authorization_code", redirect_uri=REDIRECT,
                        code_verifier=verifier).json()

    assert set(tokens) == {"access_token", "expires_in", "open_id", "refresh_expires_in", "refresh_token",
                           "scope", "token_type"}
    assert tokens["open_id"] == alice.open_id and tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 86400 and tokens["refresh_expires_in"] == 31536000
    assert tokens["access_token"].startswith("act.") and tokens["refresh_token"].startswith("rft.")
    info = Api(emulator.base_url or "", str(tokens["access_token"])).session.get(
        f"{emulator.base_url}{PATHS['user_info']}", params={"fields": "open_id,display_name"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5)
    assert info.json()["data"]["user"] == {"open_id": alice.open_id, "display_name": "Alice"}


def test_rfc7636_base64url_challenge_is_refused_because_tiktok_wants_hex(emulator: Emulator, alice: User) -> None:
    verifier = secrets.token_urlsafe(48)
    b64 = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = callback_params(authorize(emulator, b64))
    answer = token_call(emulator, code=params["code"], grant_type="authorization_code", redirect_uri=REDIRECT,
                        code_verifier=verifier)
    assert oauth_error(answer) == "invalid_grant"
    assert answer.json()["error_description"] == "Code verifier or code challenge is invalid."


@pytest.mark.parametrize("change", ["wrong_verifier", "other_redirect", "reused_code", "unknown_code",
                                    "expired_code"])
def test_bad_code_exchanges_are_invalid_grant(emulator: Emulator, alice: User, change: str) -> None:
    verifier = secrets.token_urlsafe(48)
    code = callback_params(authorize(emulator, hex_challenge(verifier)))["code"]
    form = {"code": code, "grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": verifier}
    if change == "wrong_verifier":
        form["code_verifier"] = secrets.token_urlsafe(48)
    elif change == "other_redirect":
        form["redirect_uri"] = "http://127.0.0.1:9999/callback/"
    elif change == "reused_code":
        assert "access_token" in token_call(emulator, **form).json()
    elif change == "unknown_code":
        form["code"] = "not-a-code"
    else:
        emulator.clock.advance(emulator.config.auth_code_ttl)
    assert oauth_error(token_call(emulator, **form)) == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(emulator: Emulator, alice: User) -> None:
    answer = requests.post(f"{emulator.base_url}{PATHS['token']}", timeout=5, data={
        "client_key": emulator.config.client_key, "client_secret": "nope", "grant_type": "refresh_token",
        "refresh_token": alice.refresh_token})
    assert oauth_error(answer) == "invalid_client"


def test_unknown_grant_type_and_json_body_are_refused(emulator: Emulator, alice: User) -> None:
    assert oauth_error(token_call(emulator, grant_type="password")) == "unsupported_grant_type"
    as_json = requests.post(f"{emulator.base_url}{PATHS['token']}", timeout=5, json={
        "client_key": emulator.config.client_key, "client_secret": emulator.config.client_secret,
        "grant_type": "refresh_token", "refresh_token": alice.refresh_token})
    assert oauth_error(as_json) == "invalid_request"


@pytest.mark.parametrize(("redirect_uri", "why"), [
    ("https://example.com:443/callback/", "localhost"),
    ("http://127.0.0.1/callback/", "port"),
    ("http://127.0.0.1:8765/callback/?x=1", "query"),
    ("ftp://127.0.0.1:8765/", "http"),
])
def test_authorize_refuses_redirect_uris_that_break_the_desktop_rules(emulator: Emulator, redirect_uri: str,
                                                                      why: str) -> None:
    answer = authorize(emulator, hex_challenge("v" * 43), redirect_uri=redirect_uri)
    assert answer.status_code == 400 and why in answer.text
    assert "Location" not in answer.headers


def test_authorize_refuses_an_unknown_client_key(emulator: Emulator) -> None:
    answer = authorize(emulator, hex_challenge("v" * 43), client_key="someone-else")
    assert answer.status_code == 400 and "client_key" in answer.text


@pytest.mark.parametrize(("extra", "challenge", "error"), [
    ({"response_type": "token"}, "c" * 64, "unsupported_response_type"),
    ({"scope": "video.delete"}, "c" * 64, "invalid_scope"),
    ({}, None, "invalid_request"),
    ({"code_challenge_method": "plain"}, "c" * 64, "invalid_request"),
])
def test_authorize_redirects_with_an_error(emulator: Emulator, extra: dict[str, str], challenge: str | None,
                                           error: str) -> None:
    answer = authorize(emulator, challenge, **extra)
    params = callback_params(answer)
    assert params["error"] == error and params["state"] == "xyz-state" and "code" not in params


def test_registered_redirect_uri_with_wildcard_port(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(redirect_uris=["http://127.0.0.1:*/callback/"])
    assert authorize(emu, "c" * 64, redirect_uri="http://127.0.0.1:4321/callback/").status_code == 302
    assert authorize(emu, "c" * 64, redirect_uri="http://127.0.0.1:4321/other/").status_code == 400


def test_granted_scopes_are_those_the_user_allows(emulator: Emulator) -> None:
    emulator.add_user("bob", scopes=("user.info.basic", "video.upload"))
    params = callback_params(authorize(emulator, "c" * 64, scope="user.info.basic,video.upload,video.publish",
                                       emulator_user="bob"))
    assert params["scopes"] == "user.info.basic,video.upload"


def test_refresh_rotates_and_the_old_refresh_token_stops_working(emulator: Emulator, alice: User) -> None:
    old_refresh, old_access = alice.refresh_token, alice.access_token
    answer = token_call(emulator, grant_type="refresh_token", refresh_token=old_refresh)
    tokens = answer.json()
    assert answer.status_code == 200 and tokens["refresh_token"] != old_refresh
    assert tokens["access_token"] != old_access
    assert oauth_error(token_call(emulator, grant_type="refresh_token", refresh_token=old_refresh)) == "invalid_grant"
    assert token_call(emulator, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 200
    refreshes = emulator.records.refreshes
    assert [(r.open_id, r.ok, r.rotated) for r in refreshes] == [
        (alice.open_id, True, True), (alice.open_id, False, False), (alice.open_id, True, True)]
    assert all(old_refresh not in repr(r) for r in refreshes)  # records hold a hash, never the token
    # By default the previous access token stays valid until it expires.
    assert Api(emulator.base_url or "", old_access).post("creator_info").status_code == 200


def test_refresh_without_rotation_keeps_the_refresh_token(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(rotate_refresh_tokens=False)
    user = emu.add_user("alice")
    first = token_call(emu, grant_type="refresh_token", refresh_token=user.refresh_token).json()
    second = token_call(emu, grant_type="refresh_token", refresh_token=user.refresh_token).json()
    assert first["refresh_token"] == second["refresh_token"] == user.refresh_token
    assert emu.records.refreshes[0].rotated is False


def test_reusing_a_rotated_refresh_token_can_revoke_the_family(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(rotated_refresh_reuse="revoke_family")
    user = emu.add_user("alice")
    old = user.refresh_token
    new = token_call(emu, grant_type="refresh_token", refresh_token=old).json()
    assert oauth_error(token_call(emu, grant_type="refresh_token", refresh_token=old)) == "invalid_grant"
    assert oauth_error(token_call(emu, grant_type="refresh_token", refresh_token=new["refresh_token"])) == \
        "invalid_grant"
    assert error_of(Api(emu.base_url or "", new["access_token"]).post("creator_info")) == \
        (401, "access_token_invalid")


def test_refresh_can_revoke_the_previous_access_token(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(refresh_revokes_old_access_token=True)
    user = emu.add_user("alice")
    old_access = user.access_token
    token_call(emu, grant_type="refresh_token", refresh_token=user.refresh_token)
    assert error_of(Api(emu.base_url or "", old_access).post("creator_info")) == (401, "access_token_invalid")


def test_access_token_expires_on_the_clock_and_a_refresh_cures_it(emulator: Emulator, alice: User) -> None:
    api = Api(emulator.base_url or "", alice.access_token)
    emulator.clock.advance(86399)
    assert api.post("creator_info").status_code == 200
    emulator.clock.advance(1)
    assert error_of(api.post("creator_info")) == (401, "access_token_invalid")
    fresh = token_call(emulator, grant_type="refresh_token", refresh_token=alice.refresh_token).json()
    assert Api(emulator.base_url or "", fresh["access_token"]).post("creator_info").status_code == 200


def test_refresh_token_expires_on_the_clock(emulator: Emulator) -> None:
    user = emulator.add_user("carol", refresh_ttl=1000)
    emulator.clock.advance(1000)
    assert oauth_error(token_call(emulator, grant_type="refresh_token", refresh_token=user.refresh_token)) == \
        "invalid_grant"


def test_revoke_ends_every_token_of_the_user(emulator: Emulator, alice: User) -> None:
    answer = requests.post(f"{emulator.base_url}{PATHS['revoke']}", timeout=5, data={
        "client_key": emulator.config.client_key, "client_secret": emulator.config.client_secret,
        "token": alice.access_token})
    assert answer.status_code == 200 and answer.content == b""
    assert error_of(Api(emulator.base_url or "", alice.access_token).post("creator_info")) == \
        (401, "access_token_invalid")
    assert oauth_error(token_call(emulator, grant_type="refresh_token", refresh_token=alice.refresh_token)) == \
        "invalid_grant"


@pytest.mark.parametrize(("option", "expected"), [("ok", None), ("error", "invalid_request")])
def test_revoke_of_an_unknown_token(make_emulator: Callable[..., Emulator], option: str,
                                    expected: str | None) -> None:
    emu = make_emulator(revoke_unknown_token=option)
    answer = requests.post(f"{emu.base_url}{PATHS['revoke']}", timeout=5, data={
        "client_key": emu.config.client_key, "client_secret": emu.config.client_secret, "token": "act.nothing"})
    if expected is None:
        assert answer.status_code == 200 and answer.content == b""
    else:
        assert oauth_error(answer) == expected


def test_revoke_with_a_wrong_secret_is_invalid_client(emulator: Emulator, alice: User) -> None:
    answer = requests.post(f"{emulator.base_url}{PATHS['revoke']}", timeout=5, data={
        "client_key": emulator.config.client_key, "client_secret": "x", "token": alice.access_token})
    assert oauth_error(answer) == "invalid_client"


def user_info(emu: Emulator, token: str, fields: str | None) -> requests.Response:
    params = {} if fields is None else {"fields": fields}
    return requests.get(f"{emu.base_url}{PATHS['user_info']}", params=params, timeout=5,
                        headers={"Authorization": f"Bearer {token}"})


def test_user_info_returns_only_the_fields_asked_for(emulator: Emulator, alice: User) -> None:
    answer = user_info(emulator, alice.access_token, "open_id,union_id,avatar_url,display_name")
    user = answer.json()["data"]["user"]
    assert answer.status_code == 200 and set(user) == {"open_id", "union_id", "avatar_url", "display_name"}
    assert answer.json()["error"]["code"] == "ok"


@pytest.mark.parametrize(("fields", "scopes", "expected"), [
    (None, ("user.info.basic",), (400, "invalid_params")),
    ("open_id,shoe_size", ("user.info.basic",), (400, "invalid_params")),
    ("open_id,follower_count", ("user.info.basic",), (400, "scope_permission_missed")),
    ("open_id", ("video.upload",), (401, "scope_not_authorized")),
])
def test_user_info_errors(emulator: Emulator, fields: str | None, scopes: tuple[str, ...],
                          expected: tuple[int, str]) -> None:
    user = emulator.add_user("dave", scopes=scopes)
    assert error_of(user_info(emulator, user.access_token, fields)) == expected


def test_user_info_rate_limit_and_token_errors(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(user_info_per_minute=2)
    user = emu.add_user("erin")
    assert [user_info(emu, user.access_token, "open_id").status_code for _ in range(3)] == [200, 200, 429]
    assert error_of(user_info(emu, "act.unknown", "open_id")) == (401, "access_token_invalid")
    emu.clock.advance(60)
    assert user_info(emu, user.access_token, "open_id").status_code == 200
