"""PULL_FROM_URL: the emulator really downloads the media, as TikTok does (reference §2.2).

One background thread per task. Redirects are not followed: any answer but 200 fails the pull with
``video_pull_failed`` / ``photo_pull_failed``. Bodies stream through a reused 1 MiB buffer.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
from collections.abc import Callable
from typing import BinaryIO
from urllib.parse import urlsplit

from watchfolder.emulator import media
from watchfolder.emulator.publishes import Publish
from watchfolder.emulator.state import EmulatorState

BLOCK = 1024 * 1024
PULL_DEADLINE_SECONDS = 3600.0  # TikTok gives up one hour after the task starts


class PullFailed(Exception):
    """The download cannot finish; ``reason`` is the fail_reason the task ends with."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancelled(Exception):
    """The task was cancelled (or revoked, or the emulator stopped) while downloading."""


def start(emu: EmulatorState, publish: Publish) -> None:
    """Download the task's media in a daemon thread; the task's status follows the download."""
    thread = threading.Thread(target=run, args=(emu, publish), name=f"pull-{publish.publish_id}", daemon=True)
    thread.start()


def run(emu: EmulatorState, publish: Publish) -> None:
    """Download every URL of the task, then mark the transfer done (or the task FAILED)."""
    pull_failed = "photo_pull_failed" if publish.kind == "photo" else "video_pull_failed"
    try:
        problem = pull_photos(emu, publish) if publish.kind == "photo" else pull_video(emu, publish)
    except Cancelled:
        return
    except PullFailed as failure:
        fail(emu, publish, failure.reason)
        return
    except (OSError, http.client.HTTPException, ValueError):
        fail(emu, publish, pull_failed)
        return
    with emu.lock:
        if publish.failed_at is None:
            emu.finish_transfer(publish, problem)


class Sink:
    """Takes a body block by block: hashes it, keeps its first bytes, and writes it to ``out`` if given."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.head = b""

    def __call__(self, block: memoryview) -> None:
        if self.out is not None:
            self.out.write(block)
        self.hasher.update(block)
        if len(self.head) < media.HEAD_BYTES:
            self.head += bytes(block[:media.HEAD_BYTES - len(self.head)])


def pull_video(emu: EmulatorState, publish: Publish) -> str | None:
    """Download the video to a temporary file; return a content fail_reason or None."""
    assert publish.video_url is not None
    path = os.path.join(emu.temp_dir, publish.publish_id.replace("~", "_"))
    with open(path, "wb") as out:
        sink = Sink(out)
        size = fetch(emu, publish, publish.video_url, sink, emu.config.max_video_bytes, "video_pull_failed")
    with emu.lock:
        publish.sha256 = sink.hasher.hexdigest()
        publish.head = sink.head
        publish.temp_path = path
        problem = emu.video_problem(publish, path, size)
        emu.drop_file(publish)
    return problem


def pull_photos(emu: EmulatorState, publish: Publish) -> str | None:
    """Download each image in turn; return the first content fail_reason or None."""
    problem = None
    for index, url in enumerate(publish.photo_urls):
        sink = Sink()
        fetch(emu, publish, url, sink, emu.config.max_photo_bytes, "photo_pull_failed",
              too_big="picture_size_check_failed")
        with emu.lock:
            publish.photo_sha256s[index] = sink.hasher.hexdigest()
        accepted = media.image_format(sink.head) in emu.config.photo_formats
        if emu.config.check_content and problem is None and not accepted:
            problem = "file_format_check_failed"
    return problem


def fetch(emu: EmulatorState, publish: Publish, url: str, sink: Callable[[memoryview], None], limit: int,
          pull_failed: str, too_big: str = "file_format_check_failed") -> int:
    """GET ``url`` without following redirects, feeding the body to ``sink``; return its size.

    Raise PullFailed on a non-200 answer, a body over ``limit`` (as ``too_big``) or the one-hour deadline;
    raise Cancelled if the task was cancelled meanwhile.
    """
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=emu.config.pull_timeout_seconds)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"User-Agent": "TikTok-Content-Fetcher (emulator)"})
        response = connection.getresponse()
        if response.status != 200:
            raise PullFailed(pull_failed)
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        size = 0
        while True:
            if publish.cancel_event.is_set():
                raise Cancelled
            if emu.clock.now() - publish.created_at > PULL_DEADLINE_SECONDS:
                raise PullFailed(pull_failed)
            count = response.readinto(view)
            if not count:
                with emu.lock:
                    publish.fetched_urls.append(url)
                return size
            size += count
            if size > limit:
                raise PullFailed(too_big)
            sink(view[:count])
            with emu.lock:
                publish.downloaded += count
    finally:
        connection.close()


def fail(emu: EmulatorState, publish: Publish, reason: str) -> None:
    with emu.lock:
        if publish.failed_at is None:
            publish.fail_now(reason, emu.clock.now())
