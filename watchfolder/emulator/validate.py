"""Request body checks of the init endpoints (reference §1.2–§1.4, §2.1, §2.2).

TikTok's servers unmarshal into typed fields, so a string where a number belongs, or a float where an
int64 belongs, is a bad parameter here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from watchfolder.emulator.chunks import chunk_plan_problem
from watchfolder.emulator.config import EmulatorConfig
from watchfolder.emulator.envelope import ApiError

PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
VIDEO_POST_INFO = frozenset({
    "title", "privacy_level", "disable_duet", "disable_stitch", "disable_comment", "video_cover_timestamp_ms",
    "brand_content_toggle", "brand_organic_toggle", "is_aigc",
})
PHOTO_POST_INFO = frozenset({
    "title", "description", "privacy_level", "disable_comment", "auto_add_music", "brand_content_toggle",
    "brand_organic_toggle", "is_aigc",
})
VIDEO_SOURCE_INFO = frozenset({"source", "video_size", "chunk_size", "total_chunk_count", "video_url"})
PHOTO_SOURCE_INFO = frozenset({"source", "photo_images", "photo_cover_index"})
MAX_VIDEO_TITLE = 2200
MAX_PHOTO_TITLE = 90
MAX_PHOTO_DESCRIPTION = 4000
MAX_PHOTOS = 35


def bad(config: EmulatorConfig, message: str) -> ApiError:
    """Return the 400 bad-parameter refusal, spelled as the config says (``invalid_params`` by default)."""
    return ApiError(400, config.invalid_param_code, message)


def utf16_length(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, the unit TikTok counts titles in."""
    return len(text.encode("utf-16-le")) // 2


def json_object(body: bytes, config: EmulatorConfig, *, allow_empty: bool = False) -> dict[str, Any]:
    """Given a request body, return it parsed as a JSON object; raise the bad-parameter error if it is not.

    ``allow_empty`` accepts no body at all as ``{}`` (creator_info takes none).
    """
    if allow_empty and not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad(config, "The request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise bad(config, "The request body must be a JSON object")
    return value


def member(body: Mapping[str, Any], key: str, config: EmulatorConfig, *, required: bool = True,
           message: str | None = None) -> dict[str, Any]:
    """Return the object ``body[key]``; raise the bad-parameter error if it is missing (when required)
    or not an object."""
    value = body.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise bad(config, message or f"The request {key.replace('_', ' ')} is empty or incorrect")
    return value


def check_known(section: Mapping[str, Any], known: Iterable[str], name: str, config: EmulatorConfig) -> None:
    """With ``reject_unknown_fields``, refuse keys TikTok does not document (catches a client's typos)."""
    if not config.reject_unknown_fields:
        return
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise bad(config, f"Unknown field(s) in {name}: {', '.join(unknown)}")


def check_types(section: Mapping[str, Any], config: EmulatorConfig, *, bools: Iterable[str] = (),
                ints: Iterable[str] = (), strings: Iterable[str] = ()) -> None:
    """Refuse a present field whose JSON type is wrong (null counts as absent)."""
    for key in bools:
        if section.get(key) is not None and not isinstance(section[key], bool):
            raise bad(config, f"{key} must be a boolean")
    for key in ints:
        if section.get(key) is not None and not is_int(section[key]):
            raise bad(config, f"{key} must be an integer")
    for key in strings:
        if section.get(key) is not None and not isinstance(section[key], str):
            raise bad(config, f"{key} must be a string")


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_text(section: Mapping[str, Any], key: str, limit: int, config: EmulatorConfig) -> None:
    """Refuse a title or description longer than ``limit`` UTF-16 code units."""
    text = section.get(key)
    if isinstance(text, str) and utf16_length(text) > limit:
        raise bad(config, f"The {key} is too long: {utf16_length(text)} > {limit} UTF-16 code units")


def check_brand(post_info: Mapping[str, Any], config: EmulatorConfig) -> None:
    """Apply the brand-toggle options: required toggles, and branded content that is SELF_ONLY."""
    for key in ("brand_content_toggle", "brand_organic_toggle"):
        if config.require_brand_toggles and post_info.get(key) is None:
            raise bad(config, f"{key} is required")
    if (config.branded_self_only == "reject" and post_info.get("brand_content_toggle") is True
            and post_info.get("privacy_level") == "SELF_ONLY"):
        raise bad(config, "Branded content cannot be SELF_ONLY")


@dataclass(frozen=True)
class VideoSource:
    source: str
    video_size: int | None = None
    chunk_size: int | None = None
    total_chunk_count: int | None = None
    video_url: str | None = None


def video_source(source_info: Mapping[str, Any], config: EmulatorConfig) -> VideoSource:
    """Given a video init's ``source_info``, return what it declares; raise the bad-parameter error for a
    missing field or a chunk plan TikTok refuses, or 403 ``url_ownership_unverified`` for a bad URL."""
    check_known(source_info, VIDEO_SOURCE_INFO, "source_info", config)
    source = source_info.get("source")
    if source == "FILE_UPLOAD":
        size, chunk, count = (source_info.get(k) for k in ("video_size", "chunk_size", "total_chunk_count"))
        if not (is_int(size) and is_int(chunk) and is_int(count)):
            raise bad(config, "video_size, chunk_size and total_chunk_count must be integers")
        problem = chunk_plan_problem(size, chunk, count, config)
        if problem:
            raise bad(config, problem)
        return VideoSource(source, size, chunk, count)
    if source == "PULL_FROM_URL":
        url = source_info.get("video_url")
        if not isinstance(url, str) or not url:
            raise bad(config, "video_url is required for PULL_FROM_URL")
        check_url(url, config)
        return VideoSource(source, video_url=url)
    raise bad(config, "source must be FILE_UPLOAD or PULL_FROM_URL")


def photo_source(source_info: Mapping[str, Any], config: EmulatorConfig) -> tuple[list[str], int]:
    """Given a photo init's ``source_info``, return (image URLs, cover index); raise the bad-parameter
    error or 403 ``url_ownership_unverified``."""
    check_known(source_info, PHOTO_SOURCE_INFO, "source_info", config)
    if source_info.get("source") != "PULL_FROM_URL":
        raise bad(config, "Only PULL_FROM_URL is allowed for photos")
    urls = source_info.get("photo_images")
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_PHOTOS or not all(
            isinstance(url, str) and url for url in urls):
        raise bad(config, f"photo_images must be a list of 1 to {MAX_PHOTOS} URLs")
    cover = source_info.get("photo_cover_index")
    if not is_int(cover) or not 0 <= cover < len(urls):
        raise bad(config, "photo_cover_index must be an index into photo_images")
    for url in urls:
        check_url(url, config)
    return list(urls), cover


def check_url(url: str, config: EmulatorConfig) -> None:
    """Raise 403 ``url_ownership_unverified`` unless ``url`` is covered by a verified property.

    A property is a URL prefix (exact string prefix) or ``domain:NAME`` (NAME and its subdomains, https).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(403, "url_ownership_unverified", "The URL is not valid")
    if config.require_https_urls and parts.scheme != "https":
        raise ApiError(403, "url_ownership_unverified", "Only https URLs can be pulled")
    for prop in config.verified_url_prefixes:
        if prop.startswith("domain:"):
            domain = prop[len("domain:"):].lower()
            if parts.hostname == domain or parts.hostname.endswith("." + domain):
                return
        elif url.startswith(prop):
            return
    raise ApiError(403, "url_ownership_unverified", "The URL's domain or prefix is not verified for this app")
