"""item_done: "a draft waits in the TikTok app" for inbox accounts, the post's URL for direct ones; notify.events
mutes an event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import wait_for
from tests.test_notify import Receiver, notify_rig, start
from watchfolder.config.settings import NotifySettings
from watchfolder.media import samples


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    serving = Receiver()
    yield serving
    serving.close()


def events(receiver: Receiver, kind: str) -> list[dict]:
    return [post.json() for post in receiver.at("/hook") if post.json()["event"] == kind]


def test_an_inbox_item_done_says_a_draft_waits_in_the_app(make_rig, receiver, tmp_path):
    rig = notify_rig(make_rig, receiver)
    start(rig, receiver)
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    [payload] = wait_for(lambda: events(receiver, "item_done"), 10, what="item_done at the webhook")
    assert payload["message"] == "a draft waits in the TikTok app for alice: clip.mp4"
    assert payload["severity"] == "info" and payload["account"] == "alice" and payload["item"] == "clip.mp4"
    assert payload["mode"] == "inbox" and payload["status"] == "SEND_TO_USER_INBOX"
    assert payload["publish_id"] == sidecar["publish_id"] and payload["post_url"] is None
    topic = wait_for(lambda: [p for p in receiver.at("/topic") if b"draft" in p.body], 10, what="ntfy")[0]
    assert topic.headers["Tags"] == "white_check_mark,watchfolder" and topic.headers["Priority"] == "default"
    rig.stop()
    assert len(events(receiver, "item_done")) == 1


def test_a_public_direct_post_done_carries_its_url(make_rig, receiver, tmp_path):
    rig = notify_rig(make_rig, receiver, accounts={"bob": {"mode": "direct",
                                                           "defaults": {"privacy_level": "PUBLIC_TO_EVERYONE"}}})
    start(rig, receiver)
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("bob", "clip.mp4", tmp_path / "clip.mp4")
    sidecar = rig.wait_sidecar("bob", "clip.mp4")
    [payload] = wait_for(lambda: events(receiver, "item_done"), 10, what="item_done at the webhook")
    assert sidecar["post_ids"], "the emulator gives a public direct post its id"
    url = f"https://www.tiktok.com/@/video/{sidecar['post_ids'][0]}"
    assert payload["post_url"] == url and payload["post_ids"] == [str(p) for p in sidecar["post_ids"]]
    assert payload["message"] == f"clip.mp4 is posted for bob: {url}" and payload["mode"] == "direct"


def test_an_event_left_out_of_notify_events_is_not_sent(make_rig, receiver, tmp_path):
    rig = make_rig(overrides={"notify.webhook": receiver.url + "/hook", "notify.events": ["item_failed"]})
    assert rig.settings.notify.events == ("item_failed",)
    start(rig, receiver)
    samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    (tmp_path / "notes.docx").write_bytes(b"not a video")
    rig.drop("alice", "notes.docx", tmp_path / "notes.docx")
    rig.wait_sidecar("alice", "clip.mp4")
    wait_for(lambda: events(receiver, "item_failed"), 10, what="item_failed at the webhook")
    rig.stop()
    assert events(receiver, "item_done") == []


def test_the_default_is_every_event():
    assert NotifySettings().events == ("item_done", "item_failed", "account_paused", "token_expiring")
