"""Notifications to a real webhook and ntfy-style receiver on 127.0.0.1: a failed item, a paused account and an
expiring sign-in, each announced once, with the documented payloads and never a token."""

from __future__ import annotations

import dataclasses
import email.header
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from watchfolder.commands import run as run_command
from watchfolder.daemon.loop import Daemon
from watchfolder.media import samples
from watchfolder.ops import health, metrics, notify, sdnotify
from watchfolder.tiktok.tokens import Tokens, TokenStore


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A loopback HTTP server recording every POST; ``refuse`` answers that many requests with 503 first."""

    def __init__(self) -> None:
        self.posts: list[Received] = []
        self.refuse = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.refuse > 0:
                    receiver.refuse -= 1
                    self.send_response(503)
                else:
                    receiver.posts.append(Received(self.path, dict(self.headers.items()), body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def at(self, path: str) -> list[Received]:
        return [post for post in self.posts if post.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    serving = Receiver()
    yield serving
    serving.close()


def start(rig: Rig, receiver: Receiver) -> Daemon:
    """The rig's daemon with a quick notifier (short scans and retries) posting to the receiver."""
    sender = notify.Sender(webhook=rig.settings.notify.webhook, ntfy=rig.settings.notify.ntfy,
                           retry_delays=(0.05, 0.05), timeout=5)
    hook = notify.Notifier(rig.settings, sender=sender, scan_seconds=0.1, expiry_seconds=0.2)
    return rig.start([hook])


def notify_rig(make_rig: Any, receiver: Receiver, **options: Any) -> Rig:
    return make_rig(overrides={"notify.webhook": receiver.url + "/hook", "notify.ntfy": receiver.url + "/topic"},
                    **options)


def secrets_of(rig: Rig, account: str = "alice") -> list[str]:
    user = rig.users[account]
    return [user.access_token, user.refresh_token, rig.emulator.config.client_secret]


def test_a_failed_item_is_announced_once_to_the_webhook_and_to_ntfy(make_rig, receiver, tmp_path):
    rig = notify_rig(make_rig, receiver)
    receiver.refuse = 1  # the first POST meets a busy receiver: it is tried again
    start(rig, receiver)
    (tmp_path / "notes.docx").write_bytes(b"not a video")
    rig.drop("alice", "notes.docx", tmp_path / "notes.docx")
    rig.wait_sidecar("alice", "notes.docx", folder="failed")
    hook = wait_for(lambda: receiver.at("/hook"), 10, what="the webhook POST")[0]
    payload = hook.json()
    assert payload["source"] == "watchfolder" and payload["event"] == "item_failed"
    assert payload["severity"] == "error" and payload["account"] == "alice" and payload["item"] == "notes.docx"
    assert payload["error"]["code"] == "unsupported_media" and payload["kind"]
    assert payload["at"].endswith("Z") and payload["title"] == "alice: notes.docx failed"
    topic = wait_for(lambda: receiver.at("/topic"), 10, what="the ntfy POST")[0]
    assert topic.headers["Title"] == "alice: notes.docx failed" and topic.headers["Priority"] == "high"
    assert "unsupported_media" in topic.body.decode()
    rig.stop()
    assert len(receiver.at("/hook")) == 1 and len(receiver.at("/topic")) == 1
    everything = b"".join(post.body for post in receiver.posts).decode()
    assert not any(secret in everything for secret in secrets_of(rig))


def test_a_paused_account_is_announced_with_its_code(make_rig, receiver, tmp_path):
    rig = notify_rig(make_rig, receiver)
    rig.emulator.faults.fail_next("inbox_init", error_code="spam_risk_user_banned_from_posting")
    start(rig, receiver)
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    post = wait_for(lambda: [p for p in receiver.at("/hook") if p.json()["event"] == "account_paused"], 15,
                    what="account_paused")[0].json()
    assert post["account"] == "alice" and post["code"] == "spam_risk_user_banned_from_posting"
    assert "banned" in post["message"] and post["until"]


def test_an_expiring_sign_in_is_announced_once_across_restarts(make_rig, receiver):
    rig = notify_rig(make_rig, receiver, sign_in=False)
    now = rig.emulator.clock.now()
    store = TokenStore(rig.state_dir)
    store.check_permissions()
    store.save(Tokens(account="alice", open_id="-o", access_token="act.secret-access", access_expires_at=now + 3600,
                      refresh_token="rft.secret-refresh", refresh_expires_at=now + 3 * 86400,
                      scopes=("video.upload",), updated_at=now))
    start(rig, receiver)
    post = wait_for(lambda: receiver.at("/hook"), 10, what="token_expiring")[0].json()
    assert post["event"] == "token_expiring" and post["account"] == "alice"
    assert 2.9 < post["days_left"] <= 3.0 and "watchfolder auth login alice" in post["message"]
    assert "secret" not in json.dumps(post)
    rig.stop()

    start(rig, receiver)  # the same state_dir: it remembers what it said
    time.sleep(1.0)
    rig.stop()
    assert [p.json()["event"] for p in receiver.at("/hook")] == ["token_expiring"]


def test_failures_before_the_first_start_are_history_not_news(make_rig, receiver, tmp_path):
    rig = make_rig()
    rig.start()
    (tmp_path / "old.docx").write_bytes(b"x")
    rig.drop("alice", "old.docx", tmp_path / "old.docx")
    rig.wait_sidecar("alice", "old.docx", folder="failed")
    rig.stop()
    rig.settings = dataclasses.replace(rig.settings, notify=dataclasses.replace(
        rig.settings.notify, webhook=receiver.url + "/hook"))
    start(rig, receiver)
    (tmp_path / "new.docx").write_bytes(b"y")
    rig.drop("alice", "new.docx", tmp_path / "new.docx")
    wait_for(lambda: receiver.at("/hook"), 10, what="the new failure")
    time.sleep(0.3)
    assert [p.json()["item"] for p in receiver.at("/hook")] == ["new.docx"]


def test_ntfy_titles_beyond_latin1_travel_as_rfc2047_words() -> None:
    event = notify.Event("item_failed", "error", "alice", "alice: 猫 🐈.mp4 failed", "it failed", 0.0)
    headers, body = notify.ntfy_request(event)
    headers["Title"].encode("latin-1")  # what http.client requires of a header value
    text, charset = email.header.decode_header(headers["Title"])[0]
    assert isinstance(text, bytes) and text.decode(charset or "ascii") == "alice: 猫 🐈.mp4 failed"
    assert body == b"it failed" and headers["Tags"] == "x,watchfolder"


def test_run_builds_only_the_hooks_asked_for(make_rig, receiver):
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0", "notify.webhook": receiver.url + "/hook"})
    hooks = run_command.service_hooks(rig.settings, {"NOTIFY_SOCKET": "/run/nothing-here"})
    try:
        assert [type(h) for h in hooks] == [health.HealthMonitor, sdnotify.SystemdNotifier, metrics.MetricsServer,
                                            notify.Notifier]
    finally:
        hooks[2].close()
        hooks[3].sender.close(1)
    plain = make_rig(sign_in=False)
    assert run_command.service_hooks(plain.settings, {}) == []
