"""The effective config as YAML a person reads (``watchfolder config show``) and the shipped example.

Every key with the value in force, defaults filled in, under the names the file uses. The client
secret is never shown: only where it comes from.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from watchfolder.config import settings as config

MASK = "***"


def example_text() -> str:
    """The commented example config shipped in the package (the repository's config.example.yaml)."""
    return resources.files("watchfolder.config").joinpath("example.yaml").read_text(encoding="utf-8")


def _plain(value: object) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int) and isinstance(value[0], str):
        host, port = value
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # a listen address
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, str):
        return str(value)  # StrEnum members as their text
    return value


def _section(values: object, spec: dict[str, Any]) -> dict[str, Any]:
    """Given a settings dataclass and its section's schema, return {file key: value} for every schema key."""
    out: dict[str, Any] = {}
    for key, entry in spec.items():
        field = entry[0] if entry else key
        if hasattr(values, field):
            out[key] = _plain(getattr(values, field))
    return out


def effective(settings: config.Settings) -> dict[str, Any]:
    """Given loaded settings, return the effective config as plain data, the secret masked."""
    tiktok = _section(settings.tiktok, config._TIKTOK)
    tiktok.pop("client_secret", None)
    tiktok.pop("client_secret_file", None)
    data: dict[str, Any] = {}
    for key, entry in config._TOP.items():
        if entry is None and hasattr(settings, key) and key not in ("tiktok", "accounts") and \
                not dataclasses.is_dataclass(getattr(settings, key)):
            data[key] = _plain(getattr(settings, key))
    data["tiktok"] = tiktok
    for name, spec in (("watch", config._WATCH), ("upload", config._UPLOAD), ("media_host", config._MEDIA_HOST),
                       ("photos", config._PHOTOS), ("metrics", config._METRICS), ("notify", config._NOTIFY),
                       ("video_limits", config._VIDEO_LIMITS)):
        section = _section(getattr(settings, name), spec)
        if name != "media_host" or any(value is not None for value in section.values()):
            data[name] = section  # an unset media_host stays out: its keys are required together
    data["accounts"] = {
        account.name: {"mode": str(account.mode), "video_source": str(account.video_source),
                       "defaults": _plain(dict(account.defaults))}
        for account in settings.accounts}
    return data


def secret_note(settings: config.Settings) -> str:
    """Where the client secret comes from, never the secret: ``*** (from file)`` or ``none``."""
    tiktok = settings.tiktok
    return f"{MASK} (from {tiktok.client_secret_source})" if tiktok.client_secret else "none"


def show_text(settings: config.Settings) -> str:
    """The effective config as YAML that loads again to the same settings, headed by the file it came from;
    the client secret appears only as a comment saying where it comes from."""
    body = yaml.safe_dump(effective(settings), sort_keys=False, allow_unicode=True, default_flow_style=False)
    body = body.replace("\ntiktok:\n", f"\ntiktok:\n  # client_secret: {secret_note(settings)}\n", 1)
    return f"# the effective config from {settings.path} (defaults filled in, the secret masked)\n{body}"
