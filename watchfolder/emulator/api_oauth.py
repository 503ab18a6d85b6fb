"""Login Kit and user endpoints (reference §6, §1.7): the authorize page, ``/v2/oauth/token/``,
``/v2/oauth/revoke/`` and ``/v2/user/info/``.

OAuth errors use TikTok's flat shape and, like the real service, HTTP 200 (``oauth_error_http_status``).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode, urlsplit

from watchfolder.emulator import validate
from watchfolder.emulator.accounts import KNOWN_SCOPES, User, pkce_matches, short_hash
from watchfolder.emulator.api_publish import authorize as authorize_token
from watchfolder.emulator.envelope import ApiError, Response, envelope, json_response, oauth_error
from watchfolder.emulator.records import RefreshRecord
from watchfolder.emulator.request import Request
from watchfolder.emulator.state import EmulatorState

LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
BASIC_FIELDS = frozenset({"open_id", "union_id", "avatar_url", "avatar_url_100", "avatar_large_url",
                          "display_name"})
PROFILE_FIELDS = frozenset({"bio_description", "profile_deep_link", "is_verified", "username"})
STATS_FIELDS = frozenset({"follower_count", "following_count", "likes_count", "video_count"})


def authorize(emu: EmulatorState, req: Request) -> Response:
    """``GET /v2/auth/authorize/``: approve at once and redirect to ``redirect_uri`` with code and state.

    An unknown client_key or a redirect_uri that breaks the rules gets an error page (no redirect, as
    OAuth requires); other problems redirect with ``error`` and ``error_description``. The user signed
    in is ``?emulator_user=NAME``, else ``emu.authorize_user``, else the first user (one is created
    when there is none). Granted scopes are those asked for that the user's ``scopes`` include.
    """
    config = emu.config
    if req.param("client_key") != config.client_key:
        return page(400, "This app cannot log in: client_key is not known.")
    redirect_uri = req.param("redirect_uri") or ""
    problem = redirect_problem(redirect_uri, config.redirect_uris)
    if problem:
        return page(400, f"redirect_uri is not allowed: {problem}")
    state = req.param("state")
    if req.param("response_type") != "code":
        return redirect(redirect_uri, error="unsupported_response_type",
                        error_description="response_type must be code", state=state)
    scopes = [s for s in (req.param("scope") or "").split(",") if s]
    if not scopes or not set(scopes) <= KNOWN_SCOPES:
        return redirect(redirect_uri, error="invalid_scope", error_description="scope is missing or unknown",
                        state=state)
    challenge = req.param("code_challenge")
    if config.require_pkce and not challenge:
        return redirect(redirect_uri, error="invalid_request", error_description="code_challenge is required",
                        state=state)
    if challenge and req.param("code_challenge_method") != "S256":
        return redirect(redirect_uri, error="invalid_request",
                        error_description="code_challenge_method must be S256", state=state)
    with emu.lock:
        user = signing_in(emu, req.param("emulator_user"), scopes)
        granted = [s for s in scopes if s in user.scopes or s == "user.info.basic"]
        code = emu.accounts.new_code(user, redirect_uri, challenge, granted, emu.clock.now())
    answer = redirect(redirect_uri, code=code, scopes=",".join(granted), state=state)
    answer.open_id = user.open_id
    return answer


def token(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/oauth/token/`` (form-encoded): grant_type authorization_code (PKCE with TikTok's hex
    SHA-256 challenge) or refresh_token (rotating the refresh token when configured)."""
    config = emu.config
    form = form_fields(req)
    if form is None:
        return fail(emu, req, "invalid_request", "The request parameters are malformed.")
    if form.get("client_key") != config.client_key or form.get("client_secret") != config.client_secret:
        return fail(emu, req, "invalid_client", "Client key or secret is invalid.")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        return exchange_code(emu, req, form)
    if grant == "refresh_token":
        return refresh(emu, req, form)
    return fail(emu, req, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token.")


def exchange_code(emu: EmulatorState, req: Request, form: dict[str, str]) -> Response:
    with emu.lock:
        now = emu.clock.now()
        entry = emu.accounts.codes.get(form.get("code", ""))
        if entry is None or entry.used or now >= entry.expires_at:
            return fail(emu, req, "invalid_grant", "Authorization code is expired or invalid.")
        if form.get("redirect_uri") != entry.redirect_uri:
            return fail(emu, req, "invalid_grant", "Redirect_uri is not matched with the uri when requesting code.")
        if entry.code_challenge and not pkce_matches(form.get("code_verifier", ""), entry.code_challenge):
            return fail(emu, req, "invalid_grant", "Code verifier or code challenge is invalid.")
        entry.used = True
        user = emu.accounts.users[entry.open_id]
        access, refresh_token = emu.accounts.issue(user, entry.scopes, now)
        return token_answer(req, user, access.token, refresh_token.token, entry.scopes,
                            refresh_token.expires_at - now)


def refresh(emu: EmulatorState, req: Request, form: dict[str, str]) -> Response:
    config = emu.config
    sent = form.get("refresh_token", "")
    with emu.lock:
        now = emu.clock.now()
        old = emu.accounts.refresh.get(sent)
        open_id = old.open_id if old else None

        def refused(description: str) -> Response:
            emu.records.add_refresh(RefreshRecord(open_id, short_hash(sent), False, now, False, "invalid_grant"))
            return fail(emu, req, "invalid_grant", description, open_id)

        if old is None or old.state == "revoked" or now >= old.expires_at:
            return refused("Refresh token is invalid or expired.")
        if old.state == "rotated":
            if config.rotated_refresh_reuse == "revoke_family":
                emu.revoke(old.open_id)
            return refused("Refresh token has been rotated and is no longer valid.")
        user = emu.accounts.users[old.open_id]
        if config.refresh_revokes_old_access_token:
            for access in emu.accounts.access.values():
                if access.open_id == user.open_id:
                    access.revoked = True
        rotate = config.rotate_refresh_tokens
        if rotate:
            old.state = "rotated"
        access, new = emu.accounts.issue(user, old.scopes, now, keep_refresh=None if rotate else old)
        emu.records.add_refresh(RefreshRecord(user.open_id, short_hash(sent), rotate, now, True))
        return token_answer(req, user, access.token, new.token, old.scopes, new.expires_at - now)


def revoke(emu: EmulatorState, req: Request) -> Response:
    """``POST /v2/oauth/revoke/`` (form-encoded ``token``): end the grant; every token of that user stops
    working. Success is an empty body."""
    config = emu.config
    form = form_fields(req)
    if form is None:
        return fail(emu, req, "invalid_request", "The request parameters are malformed.")
    if form.get("client_key") != config.client_key or form.get("client_secret") != config.client_secret:
        return fail(emu, req, "invalid_client", "Client key or secret is invalid.")
    with emu.lock:
        access = emu.accounts.access.get(form.get("token", ""))
        if access is None:
            if config.revoke_unknown_token == "ok":
                return Response(200, b"", [("X-Tt-Logid", req.log_id)])
            return fail(emu, req, "invalid_request", "The token is invalid.")
        emu.revoke(access.open_id)
    return Response(200, b"", [("X-Tt-Logid", req.log_id)], open_id=access.open_id)


def user_info(emu: EmulatorState, req: Request) -> Response:
    """``GET /v2/user/info/?fields=…``: the requested fields of the token's user (the list is mandatory)."""
    access = authorize_token(emu, req, "user_info", ("user.info.basic",))
    fields = [f for f in (req.param("fields") or "").split(",") if f]
    if not fields:
        raise validate.bad(emu.config, "fields is required")
    unknown = sorted(set(fields) - BASIC_FIELDS - PROFILE_FIELDS - STATS_FIELDS)
    if unknown:
        raise validate.bad(emu.config, f"Unknown field(s): {', '.join(unknown)}")
    for group, scope in ((PROFILE_FIELDS, "user.info.profile"), (STATS_FIELDS, "user.info.stats")):
        if set(fields) & group and scope not in access.scopes:
            raise ApiError(400, "scope_permission_missed", f"The field(s) need the scope {scope}")
    with emu.lock:
        user = emu.accounts.users[access.open_id]
    values = user_fields(user)
    return envelope({"user": {f: values[f] for f in fields}}, req.log_id, open_id=user.open_id)


# Helpers.

def user_fields(user: User) -> dict[str, object]:
    avatar = f"https://p16-sign.tiktokcdn-us.com/emulator/{user.union_id}"
    return {
        "open_id": user.open_id, "union_id": user.union_id, "avatar_url": avatar + ".jpeg",
        "avatar_url_100": avatar + "~100.jpeg", "avatar_large_url": avatar + "~1080.jpeg",
        "display_name": user.display_name, "bio_description": "", "is_verified": False,
        "profile_deep_link": f"https://vm.tiktok.com/emulator/{user.name}", "username": user.name,
        "follower_count": 0, "following_count": 0, "likes_count": 0, "video_count": 0,
    }


def signing_in(emu: EmulatorState, name: str | None, scopes: list[str]) -> User:
    """Return the user the authorize page approves for; the caller holds the lock."""
    users = emu.accounts.users
    wanted = name or emu.authorize_user
    if wanted:
        user = emu.accounts.by_name(wanted)
        if user is not None:
            return user
        return emu.accounts.add_user(wanted, scopes, emu.clock.now())
    if users:
        return next(iter(users.values()))
    return emu.accounts.add_user("creator", scopes, emu.clock.now())


def redirect_problem(uri: str, registered: list[str]) -> str | None:
    """Return why ``uri`` may not be redirected to, or None.

    With registered URIs: it must equal one (``:*`` matching any port). Without: the desktop rules
    (absolute http/https, host localhost or 127.0.0.1, a port, no query or fragment).
    """
    parts = urlsplit(uri)
    if registered:
        for allowed in registered:
            if uri == allowed:
                return None
            wildcard = ":*" in allowed and parts.port is not None
            if wildcard and uri == allowed.replace(":*", f":{parts.port}", 1):
                return None
        return "it is not one of the registered redirect URIs"
    if parts.scheme not in ("http", "https"):
        return "it must be an absolute http or https URL"
    if parts.hostname not in LOOPBACK_HOSTS:
        return "a desktop app may only redirect to localhost or 127.0.0.1"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        return "it needs a port"
    if parts.query or parts.fragment:
        return "it may not carry a query or fragment"
    return None


def redirect(uri: str, **params: str | None) -> Response:
    location = uri + "?" + urlencode({k: v for k, v in params.items() if v is not None})
    body = f'<a href="{html.escape(location)}">Continue</a>'.encode()
    return Response(302, body, [("Location", location), ("Content-Type", "text/html; charset=utf-8")],
                    error_code=params.get("error"))


def page(status: int, message: str) -> Response:
    body = f"<!doctype html><title>TikTok</title><p>{html.escape(message)}</p>".encode()
    return Response(status, body, [("Content-Type", "text/html; charset=utf-8")], error_code="invalid_request")


def form_fields(req: Request) -> dict[str, str] | None:
    """Return the body's form fields (first value each), or None unless it is form-encoded."""
    if not (req.headers.get("Content-Type") or "").lower().startswith("application/x-www-form-urlencoded"):
        return None
    try:
        parsed = parse_qs(req.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None
    return {key: values[0] for key, values in parsed.items()}


def fail(emu: EmulatorState, req: Request, error: str, description: str, open_id: str | None = None) -> Response:
    answer = oauth_error(error, description, req.log_id, emu.config.oauth_error_http_status)
    answer.open_id = open_id
    return answer


def token_answer(req: Request, user: User, access: str, refresh_token: str, scopes: tuple[str, ...],
                 refresh_left: float) -> Response:
    payload = {
        "access_token": access, "expires_in": user.access_ttl, "open_id": user.open_id,
        "refresh_expires_in": int(refresh_left), "refresh_token": refresh_token,
        "scope": ",".join(scopes), "token_type": "Bearer",
    }
    return json_response(200, payload, req.log_id, open_id=user.open_id)
