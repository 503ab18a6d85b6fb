"""The logging setup: output format by stream, level filtering, and secrets that never get out."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from watchfolder import logs
from watchfolder.core.errors import UsageError


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    # configure() also routes stdlib logging into the test's stream: undo that for other tests.
    if logs._stdlib_handler is not None:
        logging.getLogger().removeHandler(logs._stdlib_handler)
        logs._stdlib_handler = None
    logging.getLogger().setLevel(logging.WARNING)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_when_the_stream_is_not_a_tty() -> None:
    """Under systemd (no TTY) each event is one JSON object with an ISO UTC timestamp and the bound context."""
    stream = io.StringIO()
    logs.configure("info", stream=stream)

    logs.get_logger(account="alice").info("item_queued", item="clip.mp4")

    [event] = json_lines(stream)
    assert event["event"] == "item_queued"
    assert event["account"] == "alice"
    assert event["item"] == "clip.mp4"
    assert event["level"] == "info"
    assert str(event["timestamp"]).endswith("Z")


def test_console_lines_on_a_tty() -> None:
    """On a terminal the line is for people, not JSON."""
    stream = FakeTTY()
    logs.configure("info", stream=stream)

    logs.get_logger().info("watching", folders=2)

    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())  # colours on a terminal
    assert "watching" in text
    assert "folders=2" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_events_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    logs.configure("warning", json=True, stream=stream)

    log = logs.get_logger()
    log.info("quiet")
    log.warning("loud")

    assert [event["event"] for event in json_lines(stream)] == ["loud"]


def test_an_unknown_level_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown log level 'chatty'"):
        logs.configure("chatty", stream=io.StringIO())


def test_tokens_are_masked_in_nested_event_dicts() -> None:
    """Tokens hidden in dicts, lists, secret-named keys, URLs and bearer headers are all masked."""
    stream = io.StringIO()
    logs.configure("debug", json=True, stream=stream)

    logs.get_logger().info(
        "request_sent",
        request={
            "headers": {"Authorization": "Bearer act.1234567890abcdef"},
            "form": [{"refresh_token": "opaque-refresh-value"}, {"grant_type": "refresh_token"}],
        },
        upload_url="https://upload.example/video/?upload_id=77&upload_token=UPLOADSECRET",
        callback="http://127.0.0.1:8765/callback/?code=AUTHCODE42&state=abc",
        note="got rft.ZZZZZZZZZZZ back",
        code="invalid_grant",
    )

    text = stream.getvalue()
    for secret in ("act.1234567890abcdef", "opaque-refresh-value", "UPLOADSECRET", "AUTHCODE42", "ZZZZZZZZZZZ"):
        assert secret not in text
    [event] = json_lines(stream)
    assert event["request"]["form"][1] == {"grant_type": "refresh_token"}  # type: ignore[index]
    assert event["code"] == "invalid_grant"  # an error code is not a secret
    assert "upload_id=77" in str(event["upload_url"])


def test_registered_secrets_are_masked_in_values_and_keys() -> None:
    """A secret with no telltale shape (a client secret) is masked once registered, even as a dict key."""
    stream = io.StringIO()
    logs.configure("info", json=True, stream=stream)
    logs.register_secret("plain-looking-client-secret-0001")

    logs.get_logger().info(
        "odd", detail="the secret is plain-looking-client-secret-0001!",
        table={"plain-looking-client-secret-0001": [("x", "plain-looking-client-secret-0001")]},
    )

    assert "plain-looking-client-secret-0001" not in stream.getvalue()
    assert "the secret is ***!" in stream.getvalue()


def test_exception_text_is_masked_by_the_json_renderer() -> None:
    """A traceback rendered into the JSON line carries no token, even when the exception text holds one."""
    stream = io.StringIO()
    logs.configure("info", json=True, stream=stream)
    logs.register_secret("another-registered-secret-77")

    try:
        raise RuntimeError("refresh with rft.abcdefghij and another-registered-secret-77 failed")
    except RuntimeError:
        logs.get_logger().exception("refresh_failed")

    [event] = json_lines(stream)
    assert "RuntimeError: refresh with rft.*** and *** failed" in str(event["exception"])
    assert "abcdefghij" not in stream.getvalue()
    assert "another-registered-secret-77" not in stream.getvalue()


def test_exception_objects_passed_as_values_are_masked() -> None:
    stream = io.StringIO()
    logs.configure("info", json=True, stream=stream)

    logs.get_logger().warning("failed", error=ValueError("Bearer act.qwertyuiop rejected"))

    assert "qwertyuiop" not in stream.getvalue()
    assert json_lines(stream)[0]["error"] == "Bearer *** rejected"


def test_console_renderer_masks_exceptions_too() -> None:
    stream = FakeTTY()
    logs.configure("info", stream=stream)

    try:
        raise RuntimeError("act.consoletoken123 expired")
    except RuntimeError as error:
        logs.get_logger().error("boom", exc_info=error)

    assert "consoletoken123" not in stream.getvalue()
    assert "RuntimeError: act.*** expired" in stream.getvalue()


def test_stdlib_logging_from_libraries_is_masked() -> None:
    """urllib3 logs upload URLs at DEBUG; their upload_token must not reach the output."""
    stream = io.StringIO()
    logs.configure("debug", json=True, stream=stream)

    logging.getLogger("urllib3.connectionpool").debug('"PUT /video/?upload_id=1&upload_token=LIBSECRET HTTP/1.1" 201')

    [event] = json_lines(stream)
    assert "LIBSECRET" not in str(event["event"])
    assert event["logger"] == "urllib3.connectionpool"


def test_get_logger_before_configure_still_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    """A module that logs before the CLI configured logging does not bypass redaction."""
    structlog.reset_defaults()

    logs.get_logger().info("early", access_token="act.earlybird")

    captured = capsys.readouterr()
    assert "earlybird" not in captured.err + captured.out


def test_a_logger_made_before_configure_follows_the_later_configuration() -> None:
    """Modules make their logger at import time; the CLI configures afterwards."""
    early = logs.get_logger(component="store")
    stream = io.StringIO()
    logs.configure("info", json=True, stream=stream)

    early.info("opened", token="plain-token-value")

    [event] = json_lines(stream)
    assert (event["event"], event["component"], event["token"]) == ("opened", "store", "***")
