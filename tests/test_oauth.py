"""The OAuth client: TikTok's PKCE flavour, its authorize URL, and how token answers are read."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from watchfolder.core.errors import AuthError, TikTokError
from watchfolder.core.model import Action, Mode
from watchfolder.tiktok import oauth

NOW = 1_800_000_000.0


class TestPkce:
    def test_challenge_is_the_lowercase_hex_sha256_of_the_verifier(self) -> None:
        """Known vector: SHA-256("abc")."""
        assert oauth.challenge("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    def test_challenge_is_hex_not_rfc7636_base64url(self) -> None:
        """RFC 7636's example verifier: TikTok wants the same digest as hex, not E9Melhoa2O…-cM."""
        verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        rfc_challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

        result = oauth.challenge(verifier)

        assert result == base64.urlsafe_b64decode(rfc_challenge + "=").hex()
        assert result != rfc_challenge

    def test_verifiers_are_64_allowed_characters_and_never_repeat(self) -> None:
        verifiers = {oauth.new_verifier() for _ in range(50)}

        assert len(verifiers) == 50
        allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        for verifier in verifiers:
            assert len(verifier) == 64
            assert set(verifier) <= allowed


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(Mode.INBOX, ("user.info.basic", "video.upload")), (Mode.DIRECT, ("user.info.basic", "video.publish"))],
)
def test_scopes_follow_the_mode(mode: Mode, expected: tuple[str, ...]) -> None:
    assert oauth.scopes_for(mode) == expected


def test_authorize_url_uses_tiktoks_parameter_names() -> None:
    client = oauth.OAuthClient(api_base_url="https://open.tiktokapis.com", client_key="awkey", client_secret="s")

    url = client.authorize_url(redirect_uri="http://127.0.0.1:8765/callback/",
                               scopes=("user.info.basic", "video.upload"), state="st4te", code_challenge="ab12")

    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == oauth.AUTHORIZE_URL
    assert query == {
        "client_key": "awkey", "scope": "user.info.basic,video.upload", "response_type": "code",
        "redirect_uri": "http://127.0.0.1:8765/callback/", "state": "st4te", "code_challenge": "ab12",
        "code_challenge_method": "S256",
    }
    assert "client_id" not in url
    assert "scope=user.info.basic,video.upload" in url  # comma-separated, as TikTok documents it


def test_an_emulator_serves_its_own_consent_page() -> None:
    """Pointing api_base_url at an emulator is enough for `auth login` to use the emulator's page."""
    client = oauth.OAuthClient(api_base_url="http://127.0.0.1:9/", client_key="k", client_secret="s")

    url = client.authorize_url(redirect_uri="http://127.0.0.1:1/callback/", scopes=["a"], state="s",
                               code_challenge="c")

    assert url.startswith("http://127.0.0.1:9/v2/auth/authorize/?client_key=k&")


def test_the_authorize_url_can_be_set_explicitly() -> None:
    client = oauth.OAuthClient(api_base_url="https://open.tiktokapis.com", client_key="k", client_secret="s",
                               authorize_url="https://login.example/authorize?x=1")

    url = client.authorize_url(redirect_uri="http://127.0.0.1:1/callback/", scopes=["a"], state="s",
                               code_challenge="c")

    assert url.startswith("https://login.example/authorize?x=1&client_key=k&")


# -- answers from a canned server: the shapes TikTok is known to send ------------------------------


@dataclass
class Canned:
    """A local HTTP server that answers every request with ``status`` and ``body`` and records the requests."""

    url: str = ""
    status: int = 200
    body: bytes = b"{}"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, status: int, body: object) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.fixture
def canned() -> Iterator[Canned]:
    state = Canned()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append({
                "method": self.command, "path": self.path, "headers": dict(self.headers),
                "form": parse_qs(self.rfile.read(length).decode()) if length else {},
            })
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


CLIENT_SECRET = "the-client-secret"


def client_for(canned: Canned, secret: str | None = CLIENT_SECRET) -> oauth.OAuthClient:
    return oauth.OAuthClient(api_base_url=canned.url, client_key="awkey", client_secret=secret, timeout=5)


GRANT = {"access_token": "act.A1", "expires_in": 7200, "open_id": "-000x", "refresh_expires_in": 15552000,
         "refresh_token": "rft.R1", "scope": "user.info.basic,video.upload", "token_type": "Bearer"}


def test_refresh_sends_a_form_and_reads_lifetimes_from_the_answer(canned: Canned) -> None:
    """Lifetimes come from expires_in / refresh_expires_in (here the 2 h / 180 d of the newer docs)."""
    canned.answer(200, GRANT)

    grant = client_for(canned).refresh("rft.R0", now=NOW)

    assert (grant.access_token, grant.refresh_token, grant.open_id) == ("act.A1", "rft.R1", "-000x")
    assert grant.access_expires_at == NOW + 7200
    assert grant.refresh_expires_at == NOW + 15552000
    assert grant.scopes == ("user.info.basic", "video.upload")
    [request] = canned.requests
    assert request["path"] == "/v2/oauth/token/"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"client_key": ["awkey"], "client_secret": ["the-client-secret"],
                               "grant_type": ["refresh_token"], "refresh_token": ["rft.R0"]}


def test_exchange_sends_the_verifier_and_redirect_uri(canned: Canned) -> None:
    canned.answer(200, GRANT)

    client_for(canned).exchange_code("co*de!1", redirect_uri="http://127.0.0.1:8765/callback/",
                                     code_verifier="v" * 64, now=NOW)

    form = canned.requests[0]["form"]
    assert form["grant_type"] == ["authorization_code"]
    assert form["code"] == ["co*de!1"]
    assert form["code_verifier"] == ["v" * 64]
    assert form["redirect_uri"] == ["http://127.0.0.1:8765/callback/"]


@pytest.mark.parametrize(
    ("error", "action"),
    [("invalid_grant", Action.REAUTH), ("server_error", Action.RETRY),
     ("temporarily_unavailable", Action.RETRY), ("invalid_client", Action.PAUSE), ("invalid_request", Action.REAUTH)],
)
def test_a_flat_error_body_with_http_200_is_an_error(canned: Canned, error: str, action: Action) -> None:
    canned.answer(200, {"error": error, "error_description": "Refresh token is invalid or expired.",
                        "log_id": "20261126LOG"})

    with pytest.raises(TikTokError) as caught:
        client_for(canned).refresh("rft.R0", now=NOW)

    assert (caught.value.code, caught.value.action) == (error, action)
    assert caught.value.message == "Refresh token is invalid or expired."
    assert caught.value.log_id == "20261126LOG"
    assert "rft.R0" not in str(caught.value)


def test_a_body_that_is_not_json_is_a_retryable_error_on_5xx(canned: Canned) -> None:
    canned.answer(502, b"<html>Bad Gateway</html>")

    with pytest.raises(TikTokError) as caught:
        client_for(canned).refresh("rft.R0", now=NOW)

    assert caught.value.code == "bad_response"
    assert caught.value.action is Action.RETRY


def test_an_answer_missing_fields_names_them_not_the_values(canned: Canned) -> None:
    canned.answer(200, {"access_token": "act.only", "expires_in": 60})

    with pytest.raises(TikTokError) as caught:
        client_for(canned).refresh("rft.R0", now=NOW)

    assert "open_id" in str(caught.value)
    assert "refresh_expires_in" in str(caught.value)
    assert "act.only" not in str(caught.value)


def test_no_client_secret_is_an_auth_error_naming_where_to_put_it(canned: Canned) -> None:
    with pytest.raises(AuthError) as caught:
        client_for(canned, secret=None).refresh("rft.R0", now=NOW)

    assert "tiktok.client_secret_file" in str(caught.value)
    assert "WATCHFOLDER_CLIENT_SECRET" in str(caught.value)
    assert canned.requests == []  # nothing was sent


def test_network_failure_is_retryable_and_quotes_nothing() -> None:
    client = oauth.OAuthClient(api_base_url="http://127.0.0.1:9", client_key="k", client_secret="s", timeout=2)

    with pytest.raises(TikTokError) as caught:
        client.refresh("rft.secret-refresh", now=NOW)

    assert (caught.value.code, caught.value.action) == ("network_error", Action.RETRY)
    assert "rft.secret-refresh" not in str(caught.value)


def test_user_info_reads_the_envelope_and_sends_a_bearer_token(canned: Canned) -> None:
    canned.answer(200, {"data": {"user": {"open_id": "-000x", "display_name": "Alice"}},
                        "error": {"code": "ok", "message": "", "log_id": "L"}})

    user = client_for(canned).user_info("act.A1")

    assert user["display_name"] == "Alice"
    request = canned.requests[0]
    assert request["path"] == "/v2/user/info/?fields=open_id%2Cunion_id%2Cavatar_url%2Cdisplay_name"
    assert request["headers"]["Authorization"] == "Bearer act.A1"


def test_user_info_envelope_error_is_raised_with_its_code(canned: Canned) -> None:
    canned.answer(401, {"data": {}, "error": {"code": "access_token_invalid", "message": "expired", "log_id": "L"}})

    with pytest.raises(TikTokError) as caught:
        client_for(canned).user_info("act.A1")

    assert (caught.value.code, caught.value.action, caught.value.http_status) == (
        "access_token_invalid", Action.REFRESH, 401)


def test_revoke_accepts_an_empty_body(canned: Canned) -> None:
    canned.answer(200, b"")

    client_for(canned).revoke("act.A1")

    assert canned.requests[0]["path"] == "/v2/oauth/revoke/"
    assert canned.requests[0]["form"]["token"] == ["act.A1"]
