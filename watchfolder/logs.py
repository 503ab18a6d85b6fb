"""Logging setup: structlog with a console renderer on a TTY, JSON lines otherwise, secrets masked.

Every event passes through :func:`redact` just before it is rendered, so a token, a client
secret or an Authorization header never reaches the output, whether it sits in a value, in a
nested dict or list, in a dict key, or in the text of an exception's traceback.
Over 300 lines because redaction, the line ceiling and the renderers all wrap the same processor chain.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

from watchfolder.core.errors import UsageError

Logger = FilteringBoundLogger
"""What every part of the program logs through: ``get_logger()``, or a logger given by the caller
(``log.info(event, **fields)``, ``log.bind(account=…)``)."""

MASK = "***"

# Keys whose value is a secret whatever it looks like (compared lower-cased, "-" read as "_").
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "client_secret",
        "authorization",
        "code_verifier",
        "token",
        "upload_token",
        "secret",
        "password",
    }
)

# Shapes of secrets inside free text: TikTok's token prefixes, bearer headers, and form or query
# fields carrying a secret (a logged URL or request body). The authorization `code` is only
# masked as a query field: a bare `code` key is an error code everywhere else in this program.
_TOKEN_PATTERNS = (
    (re.compile(r"\b(act|rft|clt)\.[A-Za-z0-9._~+/=!*%-]+"), r"\1." + MASK),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=!*%-]+"), r"\1 " + MASK),
    # name=value in a query string or form body
    (
        re.compile(r"(?i)\b(access_token|refresh_token|client_secret|code_verifier|upload_token|token)=[^&\s\"',;]+"),
        r"\1=" + MASK,
    ),
    (re.compile(r"([?&]code=)[^&\s\"',;#]+"), r"\1" + MASK),
    # "name": "value" in JSON text (a logged response body)
    (
        re.compile(r"(?i)(\"(?:access_token|refresh_token|client_secret|code_verifier|token)\"\s*:\s*\")[^\"]*"),
        r"\1" + MASK,
    ),
)

# Strings shorter than this are not registered: masking "a" everywhere would wreck every line.
_MIN_SECRET_LENGTH = 4

# A log line has a ceiling: one value at most this many characters (a traceback EXCEPTION_MAX), so a
# hostile file name or settings file cannot turn one event into megabytes.
VALUE_MAX = 4096
EXCEPTION_MAX = 16384
_SECRET_ROOM = 1024  # cut this much beyond the ceiling before masking, so no secret is split by the cut

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None
_stdlib_handler: logging.Handler | None = None


def register_secret(value: str | None) -> None:
    """Given a secret string (token, client secret), mask it from now on wherever it appears.

    ``None``, empty and very short strings are ignored. Registering twice is harmless.
    """
    global _secrets_pattern
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def mask_text(text: str) -> str:
    """Given any text, return it with registered secrets and token-shaped strings masked."""
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for token_pattern, replacement in _TOKEN_PATTERNS:
        text = token_pattern.sub(replacement, text)
    return text


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in SECRET_KEYS


def _mask_value(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with secrets masked, descending into dicts, lists, tuples and sets."""
    if depth > 20:  # a cycle or absurd nesting: render it as masked text rather than recurse on
        return mask_text(repr(value))
    if isinstance(value, str):
        return _bounded(value, VALUE_MAX)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return _mask_mapping(value, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        masked = [_mask_value(item, depth + 1) for item in value]
        return masked if isinstance(value, list | set | frozenset) else tuple(masked)
    # Anything else (an exception, a Path, a dataclass) is rendered by repr or str later; if that
    # text holds a secret, hand the renderer the masked text instead of the object.
    text = str(value) if isinstance(value, BaseException) else repr(value)
    masked_text = _bounded(text, VALUE_MAX)
    return value if masked_text == text else masked_text


def _bounded(text: str, limit: int) -> str:
    """Mask ``text``, then cut it to ``limit`` characters saying how many were left out."""
    if len(text) <= limit:
        return mask_text(text)
    masked = mask_text(text[:limit + _SECRET_ROOM])
    return f"{masked[:limit]}… ({len(text) - limit:,} more characters)"


def _mask_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key, value in mapping.items():
        new_key = mask_text(key) if isinstance(key, str) else key
        if _is_secret_key(key) and value not in (None, ""):
            result[new_key] = MASK
        else:
            result[new_key] = _mask_value(value, depth)
    return result


def _exception_text(exc_info: Any) -> str | None:
    """Format ``exc_info`` (True, an exception or a sys.exc_info() tuple) as traceback text."""
    if isinstance(exc_info, BaseException):
        return "".join(traceback.format_exception(exc_info))
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[1] is not None:
        return "".join(traceback.format_exception(*exc_info))
    if exc_info is True:
        current = sys.exc_info()
        if current[1] is not None:
            return "".join(traceback.format_exception(*current))
    return None


def redact(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: given an event dict, return it with every secret masked.

    Masks registered secrets and token-shaped text in values and keys at any depth, replaces
    the value of secret-named keys (``access_token``, ``authorization``, …) whole, and turns
    ``exc_info`` into masked traceback text under ``exception`` so no renderer formats the
    raw exception after this point.
    """
    if "exc_info" in event_dict:
        text = _exception_text(event_dict.pop("exc_info"))
        if text is not None:
            event_dict["exception"] = text
    exception = event_dict.pop("exception", None)
    masked = _mask_mapping(event_dict, 0)
    if isinstance(exception, str):
        # The end of a traceback says most: keep it when the whole is too long.
        masked["exception"] = mask_text(exception) if len(exception) <= EXCEPTION_MAX else (
            f"… ({len(exception) - EXCEPTION_MAX:,} characters left out) "
            + mask_text(exception[-EXCEPTION_MAX - _SECRET_ROOM:])[-EXCEPTION_MAX:])
    elif exception is not None:
        masked["exception"] = _mask_value(exception)
    event_dict.clear()
    event_dict.update(masked)
    return event_dict


def _level_number(level: str) -> int:
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        raise UsageError(f"unknown log level {level!r}: use debug, info, warning or error") from None


# syslog priorities by level name, for the "<N>" prefix journald reads (SyslogLevelPrefix=yes, its default).
_PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3, "critical": 2}


def journal_stream(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal's stream systemd handed us ($JOURNAL_STREAM names its device:inode)."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError, io.UnsupportedOperation):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def _priority_prefix(logger: Any, method_name: str, rendered: Any) -> Any:
    """Last processor under journald: ``<6>{...}`` so ``journalctl -p warning`` filters by level."""
    return f"<{_PRIORITIES.get(method_name, 6)}>{rendered}"


def _stamper(zone: datetime.tzinfo | None) -> Any:
    """Timestamps in ``zone`` with its offset (``2026-12-03T18:00:00.123+01:00``); UTC with "Z" when None."""
    if zone is None:
        return structlog.processors.TimeStamper(fmt="iso", utc=True)

    def stamp(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict["timestamp"] = datetime.datetime.now(zone).isoformat(timespec="milliseconds")
        return event_dict

    return stamp


def configure(level: str = "info", *, json: bool | None = None, stream: TextIO | None = None,
              zone: datetime.tzinfo | None = None, journal: bool | None = None) -> None:
    """Set up structlog (and the stdlib ``logging`` of libraries) for this process.

    Given a level name, write events at or above it to ``stream`` (stderr by default) with ISO
    timestamps (in ``zone`` with its offset; UTC when None): as JSON lines when ``json`` is true,
    for people when false, and when ``json`` is None, for people only if the stream is a TTY.
    With ``journal`` (None: when $JOURNAL_STREAM names the stream) every line starts with its syslog
    priority, ``<4>`` for a warning. Raise UsageError for an unknown level. Calling it again replaces
    the previous setup.
    """
    number = _level_number(level)
    output = stream if stream is not None else sys.stderr
    isatty = getattr(output, "isatty", None)
    on_tty = bool(callable(isatty) and isatty())
    if json is None:
        json = not on_tty
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if json
        # NO_COLOR: the common convention for people who want plain text on a terminal.
        else structlog.dev.ConsoleRenderer(colors=on_tty and not os.environ.get("NO_COLOR"))
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _stamper(zone),
    ]
    if journal if journal is not None else journal_stream(output):
        renderer = _Prefixed(renderer)
    structlog.configure(
        processors=[*shared, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.PrintLoggerFactory(file=output),
        cache_logger_on_first_use=False,
    )
    _configure_stdlib(number, output, shared, renderer)


class _Prefixed:
    """A renderer whose every line starts with the event's syslog priority."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        return _priority_prefix(logger, method_name, self.renderer(logger, method_name, event_dict))


def _configure_stdlib(number: int, output: TextIO, shared: list[Any], renderer: Any) -> None:
    """Route stdlib logging (urllib3, watchdog) through the same chain, redaction included.

    urllib3 logs request lines at DEBUG, and an upload URL carries an upload token in its
    query string; the shared redaction keeps that out of the output too.
    """
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact, renderer],
        )
    )
    global _stdlib_handler
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
    root.addHandler(handler)
    _stdlib_handler = handler
    root.setLevel(number)
    # Library chatter is only useful when debugging this program.
    for noisy in ("urllib3", "watchdog"):
        logging.getLogger(noisy).setLevel(number if number <= logging.DEBUG else logging.WARNING)


def get_logger(**bound: Any) -> Logger:
    """Return a structlog logger with ``bound`` context (``account=…``, ``item=…``).

    The logger is lazy: it follows the configuration current at each call, so a module-level
    logger made at import time still obeys a later :func:`configure`. If nothing is configured
    yet, configure the defaults first, so the redaction processor is in place before any event
    can be written.
    """
    if not structlog.is_configured():
        configure()
    logger: Logger = structlog.get_logger(**bound)
    return logger
