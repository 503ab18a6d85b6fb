"""TikTok's answer shapes: the ``data`` + ``error`` envelope, the flat OAuth error, and which HTTP status
goes with which error code on which endpoint (reference §1, §4, §6)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from watchfolder.emulator.config import EmulatorConfig

JSON_TYPE = "application/json; charset=UTF-8"

# The endpoints that answer with the flat OAuth shape rather than the envelope.
OAUTH_ENDPOINTS = frozenset({"token", "revoke"})

# HTTP status of each Content Posting API error code (reference §4, master table).
STATUS_OF_CODE: dict[str, int] = {
    "ok": 200,
    "invalid_param": 400,
    "invalid_params": 400,
    "invalid_file_upload": 400,
    "scope_permission_missed": 400,
    "app_version_check_failed": 400,
    "invalid_publish_id": 400,
    "token_not_authorized_for_specified_publish_id": 400,
    "publish_not_cancellable": 400,
    "access_token_invalid": 401,
    "scope_not_authorized": 401,
    "spam_risk_too_many_posts": 403,
    "spam_risk_user_banned_from_posting": 403,
    "spam_risk_too_many_pending_share": 403,
    "reached_active_user_cap": 403,
    "unaudited_client_can_only_post_to_private_accounts": 403,
    "url_ownership_unverified": 403,
    "privacy_level_option_mismatch": 403,
    "rate_limit_exceeded": 429,
    "internal_error": 500,
}

# creator_info answers "cannot post now" with HTTP 200 on purpose (reference §1.1).
CREATOR_INFO_CAP_CODES = frozenset(
    {"spam_risk_too_many_posts", "spam_risk_user_banned_from_posting", "reached_active_user_cap"}
)

_COMMON = {"access_token_invalid", "scope_not_authorized", "rate_limit_exceeded", "internal_error"}
_BAD_PARAMS = {"invalid_param", "invalid_params"}

# Which codes each endpoint can answer with, per the reference's tables.
CODES_OF_ENDPOINT: dict[str, frozenset[str]] = {
    "creator_info": frozenset(_COMMON | CREATOR_INFO_CAP_CODES),
    "video_init": frozenset(_COMMON | _BAD_PARAMS | {
        "spam_risk_too_many_posts", "spam_risk_user_banned_from_posting", "reached_active_user_cap",
        "unaudited_client_can_only_post_to_private_accounts", "url_ownership_unverified",
        "privacy_level_option_mismatch"}),
    "inbox_init": frozenset(_COMMON | _BAD_PARAMS | {
        "spam_risk_too_many_pending_share", "spam_risk_user_banned_from_posting", "url_ownership_unverified"}),
    "content_init": frozenset(_COMMON | _BAD_PARAMS | {
        "app_version_check_failed", "spam_risk_too_many_posts", "spam_risk_user_banned_from_posting",
        "spam_risk_too_many_pending_share", "reached_active_user_cap",
        "unaudited_client_can_only_post_to_private_accounts", "url_ownership_unverified",
        "privacy_level_option_mismatch"}),
    "status": frozenset(_COMMON | {"invalid_publish_id", "token_not_authorized_for_specified_publish_id"}),
    "cancel": frozenset(_COMMON | {
        "invalid_publish_id", "token_not_authorized_for_specified_publish_id", "publish_not_cancellable",
        "url_ownership_unverified"}),
    "user_info": frozenset(_COMMON | _BAD_PARAMS | {"scope_permission_missed"}),
}

OAUTH_ERRORS = frozenset({
    "access_denied", "invalid_client", "invalid_grant", "invalid_request", "invalid_scope",
    "unauthorized_client", "unsupported_grant_type", "unsupported_response_type", "server_error",
    "temporarily_unavailable",
})


def status_for(endpoint: str, code: str) -> int:
    """Given an endpoint name and a Content Posting API error code, return the HTTP status TikTok uses."""
    if endpoint == "creator_info" and code in CREATOR_INFO_CAP_CODES:
        return 200
    return STATUS_OF_CODE.get(code, 400)


class ApiError(Exception):
    """A refusal the handler answers with: HTTP status, TikTok error code and a message for humans."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(f"{http_status} {code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message


@dataclass
class Response:
    """One answer as the server writes it, plus what the request record needs to know about it."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    error_code: str | None = None
    open_id: str | None = None
    publish_id: str | None = None
    close: bool = False  # close the connection after answering (the request body could not be read)


def new_log_id(now: float) -> str:
    """Return a log_id shaped like TikTok's: a UTC timestamp then random hex."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(now)) + secrets.token_hex(10).upper()


def json_response(status: int, payload: dict[str, Any], log_id: str, **extra: Any) -> Response:
    """Return a JSON answer carrying TikTok's ``X-Tt-Logid`` header."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = [("Content-Type", JSON_TYPE), ("X-Tt-Logid", log_id)]
    return Response(status, body, headers, **extra)


def envelope(data: dict[str, Any] | None, log_id: str, *, status: int = 200, code: str = "ok",
             message: str = "", open_id: str | None = None, publish_id: str | None = None) -> Response:
    """Return the Content Posting API envelope ``{"data": …, "error": {code, message, log_id}}``.

    ``data=None`` leaves out the ``data`` key (cancel's success answer has none).
    """
    payload: dict[str, Any] = {} if data is None else {"data": data}
    payload["error"] = {"code": code, "message": message, "log_id": log_id}
    return json_response(status, payload, log_id, error_code=None if code == "ok" else code,
                         open_id=open_id, publish_id=publish_id)


def error_envelope(config: EmulatorConfig, log_id: str, status: int, code: str, message: str,
                   **extra: Any) -> Response:
    """Return an envelope that refuses: ``data`` is ``{}``, or left out when ``config.data_on_error`` is
    false (recorded real refusals show both)."""
    return envelope({} if config.data_on_error else None, log_id, status=status, code=code, message=message,
                    **extra)


def oauth_error(error: str, description: str, log_id: str, http_status: int) -> Response:
    """Return the flat OAuth error ``{"error", "error_description", "log_id"}`` (HTTP 200 at TikTok)."""
    payload = {"error": error, "error_description": description, "log_id": log_id}
    return json_response(http_status, payload, log_id, error_code=error)
