"""Post settings: an account's ``defaults:`` merged with a media file's ``<stem>.yaml`` / ``.txt``.

Everything is checked here, before any API call, against TikTok's documented limits, so a bad
settings file sends its item to ``failed/`` with a reason the user can act on. The ``post_info``
builders turn the checked settings into exactly the objects the init endpoints take.
Over 300 lines because the checks and the builders follow TikTok's one list of fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import os
import stat
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any

import yaml

from watchfolder import zones
from watchfolder.core.errors import MediaError
from watchfolder.core.model import Kind, Mode
from watchfolder.core.text import bounded, display_name, printable, short

PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
_TEXTS = ("title", "description")
_FLAGS = ("disable_comment", "disable_duet", "disable_stitch", "auto_add_music", "brand_content_toggle",
          "brand_organic_toggle", "is_aigc")
_COUNTS = ("video_cover_timestamp_ms", "photo_cover_index")
KEYS = frozenset((*_TEXTS, *_FLAGS, *_COUNTS, "privacy_level", "publish_at"))
VIDEO_ONLY = frozenset({"disable_duet", "disable_stitch", "video_cover_timestamp_ms"})
PHOTO_ONLY = frozenset({"description", "photo_cover_index", "auto_add_music"})
# TikTok counts caption lengths in UTF-16 code units (an emoji outside the BMP counts 2).
LIMITS = {(Kind.VIDEO, "title"): 2200, (Kind.PHOTO, "title"): 90, (Kind.PHOTO, "description"): 4000}
_INT32_MAX = 2**31 - 1  # video_cover_timestamp_ms is an int32 at TikTok
MAX_SETTINGS_BYTES = 64 * 1024  # a settings file holds a caption and a few flags; anything bigger is refused
MAX_PROBLEMS = 10               # problems listed in one message; the rest are counted


@dataclasses.dataclass(frozen=True, slots=True)
class PostSettings:
    """Checked settings for one post; ``source_file`` names the settings file they came from, if any."""

    title: str | None = None
    description: str | None = None
    privacy_level: str | None = None
    disable_comment: bool = False
    disable_duet: bool = False
    disable_stitch: bool = False
    video_cover_timestamp_ms: int | None = None
    photo_cover_index: int = 0
    auto_add_music: bool = False
    brand_content_toggle: bool = False
    brand_organic_toggle: bool = False
    is_aigc: bool = False
    publish_at: datetime | None = None  # timezone-aware, UTC
    source_file: str | None = None


def utf16_len(text: str) -> int:
    """Given text, return its length in UTF-16 code units, the unit of TikTok's caption limits."""
    return len(text.encode("utf-16-le")) // 2


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice (plain PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key != "<<" and key in seen  # "<<" is YAML's merge key, repeatable
            except TypeError:
                continue  # an unhashable key: SafeLoader itself reports it below
            if repeated:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


class SettingsLoader(UniqueKeyLoader):
    """The loader for settings files dropped in an inbox: no anchors and no aliases.

    Written by anyone with access to the share, a settings file has no use for them, and aliases are
    how a few hundred bytes expand into gigabytes ("billion laughs"). Refused while composing, before
    any value is built.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a settings file",
                                              event.start_mark)  # type: ignore[arg-type]  # the stubs' two Marks
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors (&name) are not allowed in a settings file",
                                              event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str, loader: type[yaml.SafeLoader] = UniqueKeyLoader) -> object:
    """Given YAML text, return the data it holds (safe types only); raise ValueError saying
    "line L, column C: not valid YAML: …" on a syntax error or a repeated key.

    The message is built from the parts of yaml's error, never from str(error): that one quotes the
    offending line, which in a config file may hold the client secret.
    """
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506  # a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ValueError(f"{where}not valid YAML: {getattr(error, 'problem', None) or 'syntax error'}") from None


def read_settings_file(path: Path) -> dict[str, object]:
    """Given a ``.yaml``/``.yml`` or ``.txt`` settings file, return its raw settings: the YAML mapping
    (an empty file gives {}), or ``{"title": text}`` for a caption file (trailing newlines removed).

    Raise MediaError("bad_post_settings", "<name>: …") if it is over MAX_SETTINGS_BYTES, not UTF-8,
    not valid YAML (anchors and aliases included) or not a mapping. OSError (the file vanished or
    cannot be read) propagates: the caller decides.
    """
    name = display_name(path.name)
    try:  # never through a link, never blocking on a pipe
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MediaError("bad_post_settings", f"{name}: a symlink; settings files are never followed") from None
        raise
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MediaError("bad_post_settings", f"{name}: not a regular file")
        data = handle.read(MAX_SETTINGS_BYTES + 1)
    if len(data) > MAX_SETTINGS_BYTES:
        raise MediaError("bad_post_settings", f"{name}: over {MAX_SETTINGS_BYTES // 1024} KiB; a settings file "
                         "holds a caption and a few settings")
    try:
        text = data.decode("utf-8-sig")  # a BOM is what Windows Notepad writes; not part of the caption
    except UnicodeDecodeError:
        raise MediaError("bad_post_settings", f"{name}: not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return {"title": text.rstrip("\r\n")}
    if suffix not in (".yaml", ".yml"):
        raise MediaError("bad_post_settings", f"{name}: settings files end in .yaml, .yml or .txt")
    try:
        raw = load_yaml(text, SettingsLoader)
    except ValueError as error:
        raise MediaError("bad_post_settings", f"{name}: {error}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MediaError("bad_post_settings",
                         f"{name}: must be a mapping of settings like 'title: ...', got {type(raw).__name__}")
    return {str(key): value for key, value in raw.items()}


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key[:100], sorted(KEYS), n=1)
    return f"unknown key (did you mean {close[0]!r}?)" if close else f"unknown key (known: {', '.join(sorted(KEYS))})"


def _convert(key: str, value: object, kind: Kind | None, zone: tzinfo = UTC) -> object:
    """Given a known key and its non-null value, return it checked and converted; raise ValueError.

    ``kind`` None (account defaults, kind not known yet) checks lengths against the larger limit.
    """
    if key in _FLAGS:
        if isinstance(value, bool):
            return value
        raise ValueError(f"must be true or false, got {short(value)}")
    if key in _COUNTS:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT32_MAX:
            return value
        raise ValueError(f"must be a whole number, 0 or more, got {short(value)}")
    if key == "privacy_level":
        if value in PRIVACY_LEVELS:
            return value
        raise ValueError(f"must be one of {', '.join(PRIVACY_LEVELS)}, got {short(value)}")
    if key == "publish_at":
        return _publish_at(value, zone)
    if not isinstance(value, str):
        raise ValueError(f"must be text (put it in quotes), got {short(value)}")
    limit = LIMITS.get((kind, key)) if kind else max(v for (_, k), v in LIMITS.items() if k == key)
    if limit is not None and utf16_len(value) > limit:
        raise ValueError(f"{utf16_len(value)} UTF-16 units, TikTok allows {limit}")
    return value


def _publish_at(value: object, zone: tzinfo) -> datetime:
    """An instant from "2026-12-01T18:00:00+01:00" (an offset: that instant) or "2026-12-01 18:00" (no offset:
    wall-clock time in ``zone``, the config's ``timezone:``; a skipped or repeated hour as ``zones`` says)."""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            when = None
    if not isinstance(when, datetime):  # YAML turns an unquoted 2026-12-01 into a date: no time of day
        got = "a date without a time" if isinstance(when, date) else short(value)
        raise ValueError(f'must be a date and time like "2026-12-01 18:00" (local time) or '
                         f'"2026-12-01T18:00:00+01:00", got {got}')
    if when.tzinfo is None or when.utcoffset() is None:
        return zones.wall_clock(when, zone)
    return when.astimezone(UTC)


def check_keys_and_values(raw: Mapping[str, object], where: str) -> list[str]:
    """Given an account's raw ``defaults:`` mapping and its key path, return one problem per unknown
    key or bad value ("at 'where.key': …"); an empty list means usable for either kind of post."""
    problems: list[str] = []
    for key, value in raw.items():
        try:
            if key not in KEYS:
                raise ValueError(_unknown(str(key)))
            if value is not None:
                _convert(key, value, None)
        except ValueError as error:
            problems.append(f"at '{where}.{_key(key)}': {error}")
    return problems


def resolve(defaults: Mapping[str, object], file_values: Mapping[str, object], *, kind: Kind, mode: Mode,
            source_name: str | None, zone: tzinfo = UTC) -> PostSettings:
    """Given the account's defaults, the values of the item's settings file (``source_name``, or None
    when there is none), the kind of post and the account's mode, return the checked PostSettings,
    file values winning over defaults. A null value counts as not given.

    Raise MediaError("bad_post_settings", "clip.yaml: 'title': 2301 UTF-16 units, TikTok allows 2200")
    listing every problem (joined by "; "): unknown keys, bad values, lengths over TikTok's limits, a
    key that does not apply to this kind of post (keys from defaults that do not apply are ignored:
    one account posts both kinds), or no privacy_level for a direct post. A ``publish_at`` without an
    offset is wall-clock time in ``zone``.
    """
    other_kind_only = PHOTO_ONLY if kind is Kind.VIDEO else VIDEO_ONLY
    own = display_name(source_name) if source_name else "post settings"
    problems: list[str] = []
    merged: dict[str, tuple[object, str]] = {
        key: (value, "account defaults") for key, value in defaults.items() if key not in other_kind_only}
    for key, value in file_values.items():
        if value is None and key in KEYS:
            continue  # "title:" with nothing after it: not given here, so the default stays
        if key in other_kind_only:
            problems.append(f"{own}: '{_key(key)}' applies to {'photo' if kind is Kind.VIDEO else 'video'} posts only, "
                            f"this is a {kind} post")
        else:
            merged[key] = (value, own)
    values: dict[str, Any] = {}
    for key, (value, origin) in merged.items():
        try:
            if key not in KEYS:
                raise ValueError(_unknown(str(key)))
            if value is not None:
                values[key] = _convert(key, value, kind, zone)
        except ValueError as error:
            problems.append(f"{origin}: '{_key(key)}': {error}")
    # A bad privacy_level is reported above already; "required" on top of it would only confuse.
    if mode is Mode.DIRECT and merged.get("privacy_level", (None,))[0] is None:
        problems.append(f"{own}: privacy_level is required for direct posts: one of {', '.join(PRIVACY_LEVELS)} "
                        "(set it here or in the account's defaults)")
    if problems:
        raise MediaError("bad_post_settings", _listed(problems))
    return PostSettings(**values, source_file=source_name)


def _key(key: object) -> str:
    """A key as a message shows it: bounded, and printable whatever bytes it holds."""
    return bounded(printable(str(key)), 60)


def _listed(problems: list[str]) -> str:
    """The problems joined by "; ", the first MAX_PROBLEMS of them and a count of the rest."""
    shown = "; ".join(problems[:MAX_PROBLEMS])
    rest = len(problems) - MAX_PROBLEMS
    return shown + (f"; and {rest} more problem{'s' if rest > 1 else ''}" if rest > 0 else "")


def video_post_info(s: PostSettings, mode: Mode) -> dict[str, object]:
    """Given checked settings (from ``resolve`` with the same mode), return /video/init/'s ``post_info``;
    {} in inbox mode, whose init takes no post_info (the creator finishes the post in the app)."""
    if mode is Mode.INBOX:
        return {}
    info: dict[str, object] = {"privacy_level": s.privacy_level}
    if s.title is not None:
        info["title"] = s.title
    info |= {"disable_comment": s.disable_comment, "disable_duet": s.disable_duet,
             "disable_stitch": s.disable_stitch}
    if s.video_cover_timestamp_ms is not None:
        info["video_cover_timestamp_ms"] = s.video_cover_timestamp_ms
    # The doc table marks both brand toggles required: always send them as explicit booleans.
    return info | {"brand_content_toggle": s.brand_content_toggle,
                   "brand_organic_toggle": s.brand_organic_toggle, "is_aigc": s.is_aigc}


def photo_post_info(s: PostSettings, mode: Mode) -> dict[str, object]:
    """Given checked settings, return /content/init/'s ``post_info``: title and description, plus the
    DIRECT_POST-only fields in direct mode. Unset texts are sent as "": an empty post_info has been
    seen refused with "The request post info is empty or incorrect"."""
    info: dict[str, object] = {"title": s.title or "", "description": s.description or ""}
    if mode is Mode.DIRECT:
        info |= {"privacy_level": s.privacy_level, "disable_comment": s.disable_comment,
                 "auto_add_music": s.auto_add_music, "brand_content_toggle": s.brand_content_toggle,
                 "brand_organic_toggle": s.brand_organic_toggle}
    return info


def as_dict(s: PostSettings) -> dict[str, object]:
    """Given settings, return them as JSON-ready data for the sidecar (publish_at as ISO-8601 UTC, "Z")."""
    data = {field.name: getattr(s, field.name) for field in dataclasses.fields(s)}
    if s.publish_at is not None:
        data["publish_at"] = s.publish_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return data


def from_dict(data: Mapping[str, object]) -> PostSettings:
    """Given what ``as_dict`` returned (possibly through JSON), return the same PostSettings.

    Names that are not fields are skipped, so a row stored by a later version still loads.
    """
    names = {field.name for field in dataclasses.fields(PostSettings)}
    values: dict[str, Any] = {key: value for key, value in data.items() if key in names}
    if isinstance(values.get("publish_at"), str):
        values["publish_at"] = datetime.fromisoformat(values["publish_at"]).astimezone(UTC)
    return PostSettings(**values)
