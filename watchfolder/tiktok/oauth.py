"""TikTok OAuth v2 for a desktop app: PKCE, code exchange, refresh, revoke, user info.

TikTok's OAuth differs from RFC 6749/7636 in ways that matter here: the app id is
``client_key``, scopes are comma-separated, the PKCE challenge is the lowercase *hex* SHA-256
of the verifier (not base64url), token answers are flat JSON objects, and OAuth errors come
back with HTTP 200, so the body decides success, never the status alone.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from watchfolder.core.errors import AuthError, TikTokError
from watchfolder.core.model import SCOPE_FOR_MODE, Mode
from watchfolder.tiktok import codes, transport

AUTHORIZE_URL = "https://www.tiktok.com/v2/auth/authorize/"
API_BASE_URL = "https://open.tiktokapis.com"
TOKEN_PATH = "/v2/oauth/token/"  # noqa: S105  (an endpoint path, not a password)
REVOKE_PATH = "/v2/oauth/revoke/"
USER_INFO_PATH = "/v2/user/info/"
USER_INFO_FIELDS = "open_id,union_id,avatar_url,display_name"
BASIC_SCOPE = "user.info.basic"

_VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"

_CLIENT_SETUP_HINT = (
    "no TikTok client secret: set tiktok.client_secret_file in the config, "
    "or $WATCHFOLDER_CLIENT_SECRET, or a systemd credential named client_secret"
)


def new_verifier() -> str:
    """Return a fresh PKCE code verifier: 64 random characters from ``[A-Za-z0-9-._~]``."""
    return "".join(secrets.choice(_VERIFIER_ALPHABET) for _ in range(64))


def challenge(verifier: str) -> str:
    """Given a code verifier, return TikTok's code challenge: the lowercase hex SHA-256 of it."""
    return hashlib.sha256(verifier.encode("ascii")).hexdigest()


def scopes_for(mode: Mode) -> tuple[str, ...]:
    """Given an account's mode, return the scopes its sign-in asks for."""
    return (BASIC_SCOPE, SCOPE_FOR_MODE[mode])


def parse_scopes(text: str | None) -> tuple[str, ...]:
    """Given TikTok's scope list (comma-separated; tolerate spaces), return the scopes in order."""
    if not text:
        return ()
    return tuple(part for part in text.replace(" ", ",").split(",") if part)


@dataclass(frozen=True)
class TokenGrant:
    """One answer of the token endpoint, lifetimes already turned into absolute epoch seconds."""

    open_id: str
    access_token: str = field(repr=False)
    access_expires_at: float
    refresh_token: str = field(repr=False)
    refresh_expires_at: float
    scopes: tuple[str, ...]


def _error(code: str, message: str, *, log_id: str = "", http_status: int | None = None) -> TikTokError:
    # One policy table for every code TikTok can answer with, OAuth's included (docs/tiktok-errors.md).
    policy = codes.POLICY.get(code) or codes.FAIL_REASONS.get(code) or codes.for_error(code, http_status)
    return TikTokError(code, message, action=policy.action, log_id=log_id, http_status=http_status,
                       advice=policy.advice)


class OAuthClient:
    """Talks to TikTok's OAuth endpoints (or the emulator's) with form-encoded requests.

    The consent page is TikTok's ``AUTHORIZE_URL`` for the real API; for any other
    ``api_base_url`` (an emulator) it is ``{api_base_url}/v2/auth/authorize/`` unless
    ``authorize_url`` says otherwise.
    """

    def __init__(
        self,
        *,
        api_base_url: str,
        client_key: str,
        client_secret: str | None,
        timeout: float = 30,
        authorize_url: str | None = None,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.client_key = client_key
        self._client_secret = client_secret
        self.timeout = timeout
        if authorize_url is None:
            real = self.api_base_url == API_BASE_URL
            authorize_url = AUTHORIZE_URL if real else self.api_base_url + "/v2/auth/authorize/"
        self._authorize_endpoint = authorize_url
        self._session = transport.session()
        self._session.headers["User-Agent"] = "watchfolder"

    def __repr__(self) -> str:
        return f"OAuthClient(api_base_url={self.api_base_url!r}, client_key={self.client_key!r})"

    def authorize_url(self, *, redirect_uri: str, scopes: Sequence[str], state: str, code_challenge: str) -> str:
        """Given the sign-in parameters, return the URL of TikTok's consent page for the user to open."""
        query = urlencode(
            {
                "client_key": self.client_key,
                "scope": ",".join(scopes),
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            },
            safe=",",
        )
        separator = "&" if "?" in self._authorize_endpoint else "?"
        return f"{self._authorize_endpoint}{separator}{query}"

    def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str, now: float) -> TokenGrant:
        """Given the code from the redirect, return the granted tokens.

        ``redirect_uri`` must be the one the code was issued for. Raise TikTokError when TikTok
        refuses (``invalid_grant`` for a used or expired code), AuthError without a client secret.
        """
        body = self._post_form(
            TOKEN_PATH,
            {
                "client_key": self.client_key,
                "client_secret": self._secret(),
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )
        return self._grant(body, now)

    def refresh(self, refresh_token: str, *, now: float) -> TokenGrant:
        """Given a refresh token, return new tokens; the refresh token in the answer replaces the old one.

        Raise TikTokError with action REAUTH when the grant is gone (``invalid_grant``), RETRY
        for a server or network failure, FAIL otherwise; AuthError without a client secret.
        """
        body = self._post_form(
            TOKEN_PATH,
            {
                "client_key": self.client_key,
                "client_secret": self._secret(),
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        return self._grant(body, now)

    def revoke(self, access_token: str) -> None:
        """Given an access token, revoke the grant at TikTok. Raise TikTokError if TikTok refuses."""
        self._post_form(
            REVOKE_PATH,
            {"client_key": self.client_key, "client_secret": self._secret(), "token": access_token},
        )

    def user_info(self, access_token: str) -> dict[str, Any]:
        """Given an access token, return the user's ``open_id``, ``union_id``, ``avatar_url``, ``display_name``.

        Raise TikTokError when TikTok's envelope reports an error (``access_token_invalid`` …).
        """
        response = self._send(
            "GET",
            USER_INFO_PATH,
            params={"fields": USER_INFO_FIELDS},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        body = self._json(response)
        user = body.get("data", {}).get("user") if isinstance(body.get("data"), dict) else None
        if not isinstance(user, dict):
            raise _error("bad_response", "user info without a user object", http_status=response.status_code)
        return user

    # -- plumbing ---------------------------------------------------------------------------

    def _secret(self) -> str:
        if not self._client_secret:
            raise AuthError("", _CLIENT_SETUP_HINT, code="client_secret_missing")
        return self._client_secret

    def _post_form(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        response = self._send("POST", path, data=form)
        return self._json(response)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, self.api_base_url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            # The exception text may quote the request; report only its kind.
            raise _error("network_error", f"could not reach TikTok ({type(exc).__name__})") from None

    def _json(self, response: requests.Response) -> dict[str, Any]:
        """Return the JSON body, or raise TikTokError for an error body of either shape.

        OAuth errors are flat (``{"error": "invalid_grant", "error_description": …}``) and come
        with HTTP 200; user/info uses the API envelope (``{"error": {"code": …}}``).
        """
        status = response.status_code
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _error("bad_response", f"TikTok answered HTTP {status} with a body that is not JSON",
                         http_status=status)
        error = body.get("error")
        if isinstance(error, str) and error:
            raise _error(error, str(body.get("error_description") or ""), log_id=str(body.get("log_id") or ""),
                         http_status=status)
        if isinstance(error, dict) and error.get("code") not in (None, "", "ok"):
            raise _error(str(error["code"]), str(error.get("message") or ""),
                         log_id=str(error.get("log_id") or error.get("logid") or ""), http_status=status)
        if status >= 400:
            raise _error(f"http_{status}", f"TikTok answered HTTP {status}", http_status=status)
        return body

    def _grant(self, body: dict[str, Any], now: float) -> TokenGrant:
        """Turn a token answer into a TokenGrant; lifetimes come only from the answer itself."""
        try:
            return TokenGrant(
                open_id=str(body["open_id"]),
                access_token=str(body["access_token"]),
                access_expires_at=now + float(body["expires_in"]),
                refresh_token=str(body["refresh_token"]),
                refresh_expires_at=now + float(body["refresh_expires_in"]),
                scopes=parse_scopes(body.get("scope")),
            )
        except (KeyError, TypeError, ValueError):
            # Name the missing fields, never the values.
            fields = ("open_id", "access_token", "expires_in", "refresh_token", "refresh_expires_in")
            missing = [name for name in fields if name not in body]
            raise _error("bad_response", f"token answer is missing {', '.join(missing) or 'valid lifetimes'}") \
                from None
