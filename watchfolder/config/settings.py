"""The config file: YAML in, validated frozen ``Settings`` out, every problem reported at once.

One pipeline: read → parse YAML → walk the known keys, converting each value → cross-checks.
Each step adds "at 'key.path': what is wrong" to one list; ``load`` raises a single
``ConfigError`` holding all of them, so a user fixes the file in one go. The client secret
is never echoed: not in a problem, not in a repr.
Over 300 lines because every key's check sits in this one walk of the file, as the pipeline above says.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from watchfolder import zones
from watchfolder.config import lookup
from watchfolder.config import post as postsettings
from watchfolder.config import values as cv
from watchfolder.config.values import Converter, parse_duration, parse_listen
from watchfolder.core import accountname
from watchfolder.core.errors import ConfigError, UsageError
from watchfolder.core.limits import VideoLimits
from watchfolder.core.model import Mode, VideoSource
from watchfolder.core.text import bounded, display_name, printable

__all__ = ["ConfigError", "Settings", "load", "parse_duration", "parse_listen"]

MIN_CHUNK, MAX_CHUNK = 5_242_880, 64_000_000  # TikTok's rule for every chunk but the last
TIKTOK_API_DOMAIN = "tiktokapis.com"         # api_base_url elsewhere is an emulator (tests, demo)


@dataclasses.dataclass(frozen=True, slots=True)
class TikTokSettings:
    client_key: str
    client_secret: str | None = dataclasses.field(repr=False)  # never printed
    client_secret_source: str  # "file" | "env" | "credentials" | "inline" | "none"
    api_base_url: str = "https://open.tiktokapis.com"  # without a trailing "/"
    redirect_uri: str = "http://127.0.0.1:8765/callback/"
    init_per_minute: int = 6  # 0 means no limit (benchmarks against the emulator)
    status_per_minute: int = 30
    creator_info_per_minute: int = 20
    drafts_per_day: int = 5    # TikTok's pending-draft cap per account in 24 h (inbox mode); 0: not planned
    posts_per_day: int = 15    # TikTok's direct posts per creator in 24 h ("about 15"); 0: not planned
    timeout_seconds: float = 60
    refresh_margin_seconds: float = 300
    refresh_warn_days: float = 14


@dataclasses.dataclass(frozen=True, slots=True)
class WatchSettings:
    observer: str = "auto"
    poll_interval: float = 5
    settle_seconds: float = 10
    rescan_seconds: float = 300
    ignore: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class UploadSettings:
    chunk_size: int = MAX_CHUNK       # the largest chunks: fewest round trips (tiktok/chunks.py)
    status_poll_seconds: float = 10
    max_attempts: int = 8
    retry_initial_seconds: float = 10
    retry_max_seconds: float = 43200
    workers: int = 3                 # uploads under way at once, over all accounts
    per_account: int = 1             # uploads under way at once in one account
    cap_probe_seconds: float = 1800  # after TikTok refused at a cap: how often to ask again


@dataclasses.dataclass(frozen=True, slots=True)
class MediaHostSettings:
    url_prefix: str | None = None
    serve: tuple[str, int] | None = None
    publish_dir: Path | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PhotosSettings:
    convert: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: tuple[str, int] | None = None
    page: bool = True  # the status page at / (and /api/status, /item/N) on the same port
    actions: bool = False  # the page's POST actions: retry a failed item, pause/resume an account
    password_file: Path | None = None  # HTTP basic auth for the page from other hosts than this one
    password: str | None = dataclasses.field(default=None, repr=False)  # read from password_file at load


NOTIFY_EVENTS = ("item_done", "item_failed", "account_paused", "token_expiring")


@dataclasses.dataclass(frozen=True, slots=True)
class NotifySettings:
    webhook: str | None = None
    ntfy: str | None = None
    events: tuple[str, ...] = NOTIFY_EVENTS  # the events sent; one left out is not announced


@dataclasses.dataclass(frozen=True, slots=True)
class AccountSettings:
    name: str
    mode: Mode
    video_source: VideoSource
    defaults: Mapping[str, object]  # checked by postsettings.check_keys_and_values; read-only


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    root: Path
    state_dir: Path
    tiktok: TikTokSettings
    watch: WatchSettings
    upload: UploadSettings
    dedupe: bool
    media_host: MediaHostSettings
    photos: PhotosSettings
    metrics: MetricsSettings
    notify: NotifySettings
    accounts: tuple[AccountSettings, ...]
    log_level: str = "info"
    allow_network_state_dir: bool = False
    log_format: str = "auto"  # auto (console on a terminal, else JSON) | json | console
    timezone: str | None = None  # an IANA name; None: $TZ, else the system's
    video_limits: VideoLimits = VideoLimits()

    def zone(self) -> datetime.tzinfo:
        """The zone people read and write times in: ``timezone``, else $TZ, else the system's."""
        return zones.resolve(self.timezone)

    def daily_cap(self, mode: str) -> int:
        """TikTok's cap per 24 h the scheduler plans with for an account of ``mode`` (0: none)."""
        return self.tiktok.posts_per_day if mode == "direct" else self.tiktok.drafts_per_day

    def account(self, name: str) -> AccountSettings:
        """Given an account name, return its settings; raise UsageError naming the known ones if absent."""
        for account in self.accounts:
            if account.name == name:
                return account
        known = ", ".join(account.name for account in self.accounts)
        raise UsageError(f"unknown account {name!r}; the config has: {known}")


# ---- the schema: YAML key → (field name, converter); None marks a key handled by hand

_Spec = dict[str, "tuple[str, Converter] | None"]
_TOP: _Spec = dict.fromkeys(
    ["root", "state_dir", "tiktok", "watch", "upload", "dedupe", "media_host", "photos", "metrics",
     "notify", "accounts", "log_level", "allow_network_state_dir", "log_format", "timezone", "video_limits"])
_TIKTOK: _Spec = {
    "client_key": None, "client_secret_file": None, "client_secret": None,
    "api_base_url": ("api_base_url", cv.url), "redirect_uri": ("redirect_uri", cv.url),
    "init_per_minute": ("init_per_minute", cv.rate), "status_per_minute": ("status_per_minute", cv.rate),
    "creator_info_per_minute": ("creator_info_per_minute", cv.rate),
    "drafts_per_day": ("drafts_per_day", cv.rate), "posts_per_day": ("posts_per_day", cv.rate),
    "timeout_seconds": ("timeout_seconds", cv.seconds()),
    "refresh_margin_seconds": ("refresh_margin_seconds", cv.seconds(allow_zero=True)),
    "refresh_warn_days": ("refresh_warn_days", cv.days)}
_WATCH: _Spec = {
    "observer": ("observer", cv.choice("auto", "inotify", "polling")),
    "poll_interval": ("poll_interval", cv.seconds()), "settle_seconds": ("settle_seconds", cv.seconds()),
    "rescan_seconds": ("rescan_seconds", cv.seconds()), "ignore": ("ignore", cv.globs)}
_UPLOAD: _Spec = {
    "chunk_size": ("chunk_size", cv.whole(MIN_CHUNK, MAX_CHUNK, "a number of bytes")),
    "status_poll_seconds": ("status_poll_seconds", cv.seconds()),
    "max_attempts": ("max_attempts", cv.whole(1)), "retry_initial": ("retry_initial_seconds", cv.seconds()),
    "retry_max": ("retry_max_seconds", cv.seconds()), "workers": ("workers", cv.whole(1)),
    "per_account": ("per_account", cv.whole(1)), "cap_probe": ("cap_probe_seconds", cv.seconds())}
_MEDIA_HOST: _Spec = {"url_prefix": ("url_prefix", cv.url_prefix), "serve": ("serve", cv.listen),
                      "publish_dir": None}
_PHOTOS: _Spec = {"convert": ("convert", cv.flag)}
_METRICS: _Spec = {"listen": ("listen", cv.listen), "page": ("page", cv.flag), "actions": ("actions", cv.flag),
                   "password_file": None}
_NOTIFY: _Spec = {"webhook": ("webhook", cv.url), "ntfy": ("ntfy", cv.url),
                  "events": ("events", cv.subset_of(*NOTIFY_EVENTS))}
_ACCOUNT: _Spec = {"mode": None, "video_source": None, "defaults": None}
_VIDEO_CODECS = ("h264", "h265", "vp8", "vp9", "av1", "mpeg4", "prores")
_VIDEO_LIMITS: _Spec = {
    "codecs": ("codecs", cv.names(*_VIDEO_CODECS)),
    "min_fps": ("min_fps", cv.number(1, "frames per second")),
    "max_fps": ("max_fps", cv.number(1, "frames per second")),
    "min_side": ("min_side", cv.whole(1, 100_000, "pixels")), "max_side": ("max_side", cv.whole(1, 100_000, "pixels")),
    "max_duration": ("max_duration", cv.seconds()),
    "warn_below_duration": ("warn_below_duration", cv.seconds(allow_zero=True)),
    "audio_codecs": ("audio_codecs", cv.names("aac", "mp3", "opus", "vorbis", "ac3", "eac3", "flac", "alac", "pcm"))}

KEYS: Mapping[str, frozenset[str]] = MappingProxyType({
    name: frozenset(spec) for name, spec in [
        ("", _TOP), ("tiktok", _TIKTOK), ("watch", _WATCH), ("upload", _UPLOAD), ("media_host", _MEDIA_HOST),
        ("photos", _PHOTOS), ("metrics", _METRICS), ("notify", _NOTIFY), ("accounts.*", _ACCOUNT),
        ("video_limits", _VIDEO_LIMITS)]})
"""The known keys of each section ("" is the top level), for docs and the example's test."""


class _Walk:
    """Collects problems while the sections are read; every method returns something usable."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, key: str, text: str) -> None:
        # A key path holds names from the file (an account name of any length): shown bounded, printable.
        self.problems.append(f"at '{printable(bounded(key, 200))}': {bounded(text, 1000)}")

    def section(self, raw: object, key: str, spec: _Spec) -> dict[str, object]:
        """Given a section's raw value, return it as a dict (absent → {}); report unknown keys."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(key or "(top level)", f"must be a mapping of keys, got {cv.show(raw)}")
            return {}
        for name in raw:
            if name not in spec:
                close = difflib.get_close_matches(str(name), list(spec), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(spec)}"
                self.problem(f"{key}.{name}" if key else str(name), f"unknown key ({hint})")
        return raw

    def value(self, section: Mapping[str, object], key: str, name: str, convert: Converter) -> Any:
        """Return the converted value of ``section[name]``; None (and a problem) if it is bad or absent."""
        if section.get(name) is None:
            return None
        try:
            return convert(section[name])
        except ValueError as error:
            self.problem(f"{key}.{name}" if key else name, str(error))
            return None

    def fields(self, section: Mapping[str, object], key: str, spec: _Spec) -> dict[str, Any]:
        """Convert every present, schema-handled key; return {field name: value} for the good ones."""
        out: dict[str, Any] = {}
        for name in section:  # in file order, so problems come in the order a reader meets them
            entry = spec.get(name)
            if entry is not None and (value := self.value(section, key, name, entry[1])) is not None:
                out[entry[0]] = value
        return out

    def required(self, section: Mapping[str, object], key: str, name: str, convert: Converter,
                 hint: str) -> Any:
        if section.get(name) is None:
            self.problem(f"{key}.{name}" if key else name, f"required: {hint}")
            return None
        return self.value(section, key, name, convert)


def load(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Settings:
    """Given a config path (None: looked up as ``lookup.find`` says: ``$WATCHFOLDER_CONFIG``, then
    /etc/watchfolder, then the user's config folder) and the environment (default os.environ), return
    validated Settings; raise ConfigError with every problem found.

    Reads only the config file and the client secret's file; does not check folders (``check`` does).
    """
    env = os.environ if env is None else env
    path = lookup.find(path, env)
    config_path = Path(os.path.normpath(Path(path).expanduser().absolute()))
    raw = _read(config_path, str(path))
    walk = _Walk()
    settings = _build(raw, walk, config_path, env)
    if walk.problems:
        raise ConfigError(str(path), walk.problems)
    return settings


def _read(config_path: Path, shown: str) -> object:
    try:
        text = config_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(shown, [f"cannot read the config file: {reason}"]) from None
    try:
        return postsettings.load_yaml(text)
    except ValueError as error:
        raise ConfigError(shown, [str(error)]) from None


def _build(raw: object, walk: _Walk, config_path: Path, env: Mapping[str, str]) -> Settings:
    """Walk the sections in the documented order (so problems come in file order) into Settings."""
    if raw is None:
        walk.problem("(top level)", "the file is empty")
    top = walk.section(raw, "", _TOP)
    to_path = cv.path(config_path.parent)

    def section(name: str, spec: _Spec) -> dict[str, Any]:
        return walk.fields(walk.section(top.get(name), name, spec), name, spec)

    root = walk.required(top, "", "root", to_path, "the folder that holds one folder per account")
    state_dir = walk.required(top, "", "state_dir", to_path, "a folder on a local disk for state and tokens")
    tiktok = _tiktok(walk.section(top.get("tiktok"), "tiktok", _TIKTOK), walk, to_path, env)
    watch = WatchSettings(**section("watch", _WATCH))
    upload = UploadSettings(**section("upload", _UPLOAD))
    if upload.retry_max_seconds < upload.retry_initial_seconds:
        walk.problem("upload.retry_max", "must not be shorter than upload.retry_initial")
    dedupe = walk.value(top, "", "dedupe", cv.flag) is not False
    media = walk.section(top.get("media_host"), "media_host", _MEDIA_HOST)
    media_host = MediaHostSettings(**walk.fields(media, "media_host", _MEDIA_HOST),
                                   publish_dir=walk.value(media, "media_host", "publish_dir", to_path))
    _check_media_host(media, walk)
    if (media_host.url_prefix or "").lower().startswith("http://") and _is_tiktok(tiktok.api_base_url):
        walk.problem("media_host.url_prefix", "TikTok fetches photos and pulled videos only over https: use an "
                     "https:// prefix (a reverse proxy with a certificate in front of media_host.serve); http:// "
                     "is accepted only while tiktok.api_base_url points at an emulator")
    photos, metrics = PhotosSettings(**section("photos", _PHOTOS)), _metrics(top, walk, to_path)
    notify = NotifySettings(**section("notify", _NOTIFY))
    accounts = _accounts(top.get("accounts"), walk, media_host)
    limits = VideoLimits(**section("video_limits", _VIDEO_LIMITS))
    if limits.min_fps > limits.max_fps or limits.min_side > limits.max_side:
        walk.problem("video_limits", "a min_ value is above its max_ value")
    return Settings(
        path=config_path, root=root or Path(), state_dir=state_dir or Path(), tiktok=tiktok, watch=watch,
        upload=upload, dedupe=dedupe, media_host=media_host, photos=photos, metrics=metrics, notify=notify,
        accounts=accounts, video_limits=limits,
        log_level=walk.value(top, "", "log_level", cv.choice("debug", "info", "warning", "error")) or "info",
        allow_network_state_dir=walk.value(top, "", "allow_network_state_dir", cv.flag) is True,
        log_format=walk.value(top, "", "log_format", cv.choice("auto", "json", "console")) or "auto",
        timezone=walk.value(top, "", "timezone", cv.zone_name))


def _metrics(top: Mapping[str, object], walk: _Walk, to_path: Converter) -> MetricsSettings:
    raw = walk.section(top.get("metrics"), "metrics", _METRICS)
    values = walk.fields(raw, "metrics", _METRICS)
    password_file = walk.value(raw, "metrics", "password_file", to_path)
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8-sig").strip() or None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            walk.problem("metrics.password_file", f"cannot read {password_file}: {reason}")
        else:
            if password is None:
                walk.problem("metrics.password_file", f"{password_file} is empty")
    return MetricsSettings(**values, password_file=password_file, password=password)


def _tiktok(section: dict[str, object], walk: _Walk, to_path: Converter, env: Mapping[str, str]) -> TikTokSettings:
    key = walk.required(section, "tiktok", "client_key", cv.text, "your app's client key from the TikTok portal")
    secret, source = _client_secret(section, walk, to_path, env)
    values = walk.fields(section, "tiktok", _TIKTOK)
    values.pop("client_key", None)
    if "api_base_url" in values:
        values["api_base_url"] = str(values["api_base_url"]).rstrip("/")  # callers append "/v2/..."
    return TikTokSettings(client_key=str(key or ""), client_secret=secret, client_secret_source=source,
                          **values)


def _client_secret(section: Mapping[str, object], walk: _Walk, to_path: Converter,
                   env: Mapping[str, str]) -> tuple[str | None, str]:
    """Return (secret, source) by the documented order: file, env, systemd credential, inline, none."""
    secret_file = walk.value(section, "tiktok", "client_secret_file", to_path)
    inline = walk.value(section, "tiktok", "client_secret", cv.secret_text)
    candidates: list[tuple[str, Path | str | None, str]] = [
        ("file", secret_file, "tiktok.client_secret_file"),
        ("env", env.get("WATCHFOLDER_CLIENT_SECRET", "").strip() or None, ""),
        ("credentials", Path(env["CREDENTIALS_DIRECTORY"]) / "client_secret"
         if env.get("CREDENTIALS_DIRECTORY") else None, "$CREDENTIALS_DIRECTORY/client_secret"),
        ("inline", inline, "")]
    for source, candidate, key in candidates:
        if isinstance(candidate, Path):
            try:
                text = candidate.read_text(encoding="utf-8-sig").strip()
            except FileNotFoundError:
                if source == "credentials":
                    continue  # systemd gave a credentials folder, just not this credential
                walk.problem(key, f"cannot read {candidate}: no such file")
                return None, source
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                walk.problem(key, f"cannot read {candidate}: {reason}")
                return None, source
            if not text:
                walk.problem(key, f"{candidate} is empty")
            return text or None, source
        if candidate is not None:
            return candidate, source
    return None, "none"


def _is_tiktok(api_base_url: str) -> bool:
    """True when the API base URL is TikTok's own (``*.tiktokapis.com``), not an emulator's."""
    host = (urlsplit(api_base_url).hostname or "").lower()
    return host == TIKTOK_API_DOMAIN or host.endswith("." + TIKTOK_API_DOMAIN)


def _check_media_host(raw: Mapping[str, object], walk: _Walk) -> None:
    if not raw:
        return  # the section is optional: absent means photos and pull_from_url are unavailable
    if raw.get("url_prefix") is None:
        walk.problem("media_host.url_prefix", "required when media_host is set: the verified URL prefix")
    if (raw.get("serve") is None) == (raw.get("publish_dir") is None):
        walk.problem("media_host", "set exactly one of serve (built-in server) or publish_dir (copy there)")


def _accounts(raw: object, walk: _Walk, media_host: MediaHostSettings) -> tuple[AccountSettings, ...]:
    if not raw or not isinstance(raw, dict):
        walk.problem("accounts", f"required: a mapping of account names to settings, got {cv.show(raw)}")
        return ()
    accounts: list[AccountSettings] = []
    folded: dict[str, str] = {}
    for name, body in raw.items():
        key = f"accounts.{display_name(name) if isinstance(name, str) else name}"   # a newline shown escaped
        problem = accountname.problem(name)
        if problem is not None:
            walk.problem(key, problem)
            continue
        if name.casefold() in folded:  # one folder on a case-insensitive share (SMB, macOS)
            walk.problem(key, f"differs from account {folded[name.casefold()]!r} only in letter case")
        folded[name.casefold()] = name
        section = walk.section(body, key, _ACCOUNT)
        mode = walk.value(section, key, "mode", cv.choice(*Mode))
        source = walk.value(section, key, "video_source", cv.choice(*VideoSource))
        defaults = section.get("defaults") or {}
        if not isinstance(defaults, dict):
            walk.problem(f"{key}.defaults", f"must be a mapping of post settings, got {cv.show(defaults)}")
            defaults = {}
        walk.problems += postsettings.check_keys_and_values(defaults, f"{key}.defaults")
        source = VideoSource(source or VideoSource.FILE_UPLOAD)
        if source is VideoSource.PULL_FROM_URL and not (
                media_host.url_prefix and (media_host.serve or media_host.publish_dir)):
            walk.problem(f"{key}.video_source",
                         "pull_from_url needs media_host.url_prefix and media_host.serve or publish_dir")
        accounts.append(AccountSettings(name=name, mode=Mode(mode or Mode.INBOX), video_source=source,
                                        defaults=MappingProxyType(dict(defaults))))
    return tuple(accounts)
