"""The emulator's settings: TikTok's documented numbers as defaults, and one named option per guess.

Every option marked UNCONFIRMED in docs/emulator.md picks the documented guess as its default, so a test
that wants the other reading of the docs sets the option instead of patching code.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MIB = 1024 * 1024


class EmulatorConfigError(ValueError):
    """A setting the emulator cannot use; the message names the key and what is wrong."""


@dataclass
class EmulatorConfig:
    """Settings of one emulator; see docs/emulator.md for each field. Raise EmulatorConfigError if invalid."""

    # The app credentials the emulator accepts at /v2/oauth/token/ and /v2/auth/authorize/.
    client_key: str = "awemulatorclientkey"
    client_secret: str = "emulator-client-secret"
    redirect_uris: list[str] = field(default_factory=list)  # empty: any URI obeying the desktop rules

    # Requests per sliding 60 s window, per access token and endpoint (0 = unlimited).
    init_per_minute: int = 6
    creator_info_per_minute: int = 20
    status_per_minute: int = 30
    cancel_per_minute: int = 0  # UNCONFIRMED: not documented
    user_info_per_minute: int = 600

    # Business caps, all over a rolling 24 h on the emulator's clock (0 = unlimited).
    pending_share_cap: int = 5
    pending_share_mode: str = "rolling_24h"  # UNCONFIRMED: "rolling_24h" | "held" (drafts not yet posted)
    direct_post_daily_cap: int = 15
    active_user_cap: int = 0
    unaudited: bool = False
    unaudited_user_cap: int = 5
    unaudited_privacy_error: str = "unaudited_client_can_only_post_to_private_accounts"  # UNCONFIRMED

    # OAuth.
    access_ttl: int = 86400
    refresh_ttl: int = 31536000
    auth_code_ttl: int = 600  # UNCONFIRMED
    require_pkce: bool = True
    rotate_refresh_tokens: bool = True
    rotated_refresh_reuse: str = "reject"  # UNCONFIRMED: "reject" | "revoke_family"
    refresh_revokes_old_access_token: bool = False  # UNCONFIRMED
    revoke_unknown_token: str = "ok"  # UNCONFIRMED: "ok" | "error"
    oauth_error_http_status: int = 200

    # FILE_UPLOAD: the chunk rules under both readings of "MB" at once.
    upload_url_ttl: int = 3600
    upload_base_url: str | None = None  # default: the address the init request was sent to
    min_chunk_bytes: int = 5 * MIB
    max_chunk_bytes: int = 64_000_000
    max_final_chunk_bytes: int = 128_000_000
    single_chunk_max_bytes: int = 64_000_000  # a larger video must come in two or more chunks
    max_chunk_count: int = 1000
    max_video_bytes: int = 4_000_000_000
    multi_chunk_quirk: bool = False  # refuse every multi-chunk init: "The chunk size is invalid" (reported 2026-08)
    resend_last_chunk: str = "reject"  # UNCONFIRMED: "reject" (416) | "accept" (idempotent)
    expired_upload_fail_reason: str | None = None  # UNCONFIRMED: None keeps PROCESSING_UPLOAD
    cancel_file_upload: bool = False  # UNCONFIRMED: cancel of a FILE_UPLOAD task is publish_not_cancellable
    keep_uploads: bool = False

    # Processing after the last byte arrives (seconds on the emulator's clock).
    processing_seconds: float = 1.0
    inbox_user_posts_after: float | None = None
    moderation_seconds: float = 0.0

    # PULL_FROM_URL and content checks.
    verified_url_prefixes: list[str] = field(default_factory=list)
    require_https_urls: bool = True
    check_content: bool = True
    max_photo_bytes: int = 20_000_000
    pull_timeout_seconds: float = 30.0

    # Request strictness and answer shapes.
    invalid_param_code: str = "invalid_params"
    data_on_error: bool = True  # UNCONFIRMED: refusals carry "data": {} (False: no data key)
    inbox_post_info: str = "ignore"  # UNCONFIRMED: "ignore" | "reject" a post_info on inbox video init
    photo_formats: list[str] = field(default_factory=lambda: ["jpeg", "webp"])  # UNCONFIRMED: add "png"?
    require_brand_toggles: bool = False  # UNCONFIRMED: a missing toggle counts as false
    branded_self_only: str = "accept"  # UNCONFIRMED: "accept" | "reject" (invalid_params)
    reject_unknown_fields: bool = False  # UNCONFIRMED: unknown post_info/source_info keys are ignored

    # Records: the newest this many requests and refreshes are kept (0 = all), so a long benchmark or a
    # demo left running does not grow without bound.
    max_request_records: int = 100_000
    verbose: bool = False

    def __post_init__(self) -> None:
        problems = _check_values(self)
        if problems:
            raise EmulatorConfigError("; ".join(problems))

    def rate_limits(self) -> dict[str, int]:
        """Return the per-minute limit of each rate-limited endpoint name (0 = unlimited)."""
        return {
            "video_init": self.init_per_minute,
            "inbox_init": self.init_per_minute,
            "content_init": self.init_per_minute,
            "creator_info": self.creator_info_per_minute,
            "status": self.status_per_minute,
            "cancel": self.cancel_per_minute,
            "user_info": self.user_info_per_minute,
        }


_CHOICES: dict[str, tuple[str, ...]] = {
    "rotated_refresh_reuse": ("reject", "revoke_family"),
    "revoke_unknown_token": ("ok", "error"),
    "resend_last_chunk": ("reject", "accept"),
    "pending_share_mode": ("rolling_24h", "held"),
    "inbox_post_info": ("ignore", "reject"),
    "branded_self_only": ("accept", "reject"),
    "invalid_param_code": ("invalid_params", "invalid_param"),
    "unaudited_privacy_error": ("unaudited_client_can_only_post_to_private_accounts",
                                "privacy_level_option_mismatch"),
}

_NON_NEGATIVE = (
    "init_per_minute", "creator_info_per_minute", "status_per_minute", "cancel_per_minute",
    "user_info_per_minute", "pending_share_cap", "direct_post_daily_cap", "active_user_cap",
    "unaudited_user_cap", "processing_seconds", "moderation_seconds", "max_request_records",
)
_POSITIVE = (
    "access_ttl", "refresh_ttl", "auth_code_ttl", "upload_url_ttl", "min_chunk_bytes", "max_chunk_bytes",
    "max_final_chunk_bytes", "single_chunk_max_bytes", "max_chunk_count", "max_video_bytes",
    "max_photo_bytes", "pull_timeout_seconds",
)


def _check_values(config: EmulatorConfig) -> list[str]:
    """Given a config, return one sentence per value that is out of range (empty when all are fine)."""
    problems = []
    for name, allowed in _CHOICES.items():
        if getattr(config, name) not in allowed:
            problems.append(f"{name} must be one of {', '.join(allowed)}, got {getattr(config, name)!r}")
    problems += [f"{name} must be >= 0" for name in _NON_NEGATIVE if getattr(config, name) < 0]
    problems += [f"{name} must be > 0" for name in _POSITIVE if getattr(config, name) <= 0]
    unknown_formats = set(config.photo_formats) - {"jpeg", "webp", "png"}
    if unknown_formats:
        problems.append(f"photo_formats may hold jpeg, webp and png, not {', '.join(sorted(unknown_formats))}")
    if config.min_chunk_bytes > config.max_chunk_bytes:
        problems.append("min_chunk_bytes must not exceed max_chunk_bytes")
    if config.inbox_user_posts_after is not None and config.inbox_user_posts_after < 0:
        problems.append("inbox_user_posts_after must be >= 0 or null")
    if not 100 <= config.oauth_error_http_status <= 599:
        problems.append("oauth_error_http_status must be an HTTP status code")
    return problems


def config_from_mapping(values: Mapping[str, Any], source: str = "emulator config") -> EmulatorConfig:
    """Given a mapping of field names to values (as YAML gives them), return the config.

    Raise EmulatorConfigError naming ``source`` and every unknown key or value of the wrong type.
    """
    hints = typing.get_type_hints(EmulatorConfig)
    known = [f.name for f in dataclasses.fields(EmulatorConfig)]
    problems = []
    for key, value in values.items():
        if key not in hints:
            problems.append(f"unknown key {key!r} (known keys: {', '.join(known)})")
        elif not _has_type(value, hints[key]):
            problems.append(f"{key}: expected {_type_name(hints[key])}, got {value!r}")
    if problems:
        raise EmulatorConfigError(f"{source}: " + "; ".join(problems))
    # YAML writes 1 for 1.0: store numbers as floats where the field is a float, so the type stays honest.
    kwargs: dict[str, Any] = {key: float(value) if _wants_float(hints[key]) and value is not None else value
              for key, value in values.items()}
    try:
        return EmulatorConfig(**kwargs)
    except EmulatorConfigError as error:
        raise EmulatorConfigError(f"{source}: {error}") from None


def load_config(path: str | Path) -> EmulatorConfig:
    """Given a YAML file holding a mapping of EmulatorConfig fields, return the config.

    Raise EmulatorConfigError if the file cannot be read or parsed, is not a mapping, or has a bad key.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        values = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as error:
        raise EmulatorConfigError(f"{path}: cannot read the emulator config: {error}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise EmulatorConfigError(f"{path}: the emulator config must be a mapping of settings")
    return config_from_mapping(values, source=str(path))


def _has_type(value: Any, hint: Any) -> bool:
    """Say whether a YAML value fits a field's type; an int is accepted where a float is expected."""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_has_type(item, args[0]) for item in value)
    if type(None) in args:
        return value is None or any(_has_type(value, arg) for arg in args if arg is not type(None))
    return False


def _wants_float(hint: Any) -> bool:
    return hint is float or float in typing.get_args(hint)


def _type_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is list:
        return "a list of strings"
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return f"{_type_name(args[0])} or null"
