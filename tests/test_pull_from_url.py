"""Videos sent by PULL_FROM_URL (``video_source: pull_from_url``): staged on the media host, pulled by the
emulator with the exact bytes, released afterwards, and cancelled when given up while TikTok still pulls."""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig, wait_for
from tests.test_photos import free_port, hosted_rig, inits, sha256, staged_files
from watchfolder.emulator.clock import OffsetClock
from watchfolder.media import samples

PULL_INBOX = {"alice": {"mode": "inbox", "video_source": "pull_from_url"}}


def test_an_inbox_video_is_pulled_from_the_media_host_with_the_exact_bytes(tmp_path: Path) -> None:
    """The emulator downloads the staged video from the daemon's media host (init with video_url, status
    through PROCESSING_DOWNLOAD), the bytes match, the item reaches done/ and the staged copy is gone."""
    with hosted_rig(tmp_path, accounts=PULL_INBOX) as rig:
        rig.start()
        samples.write_mp4(tmp_path / "clip.mp4", size=3_000_000, duration_seconds=8)
        digest = sha256(tmp_path / "clip.mp4")
        rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")

        sidecar = rig.wait_sidecar("alice", "clip.mp4")

        assert [r.endpoint for r in inits(rig)] == ["inbox_init"]
        assert [r for r in rig.emulator.records.requests if r.endpoint == "upload"] == []
        (publish,) = rig.emulator.records.publishes
        assert (publish.source, publish.sha256, publish.downloaded_bytes) == ("PULL_FROM_URL", digest, 3_000_000)
        assert publish.video_url is not None and publish.video_url.startswith(rig.prefix)
        assert publish.fetched_urls == (publish.video_url,)
        assert sidecar["result"] == "done" and sidecar["sha256"] == digest
        assert (rig.folder("alice", "done") / "clip.mp4").exists()
        wait_for(lambda: staged_files(rig) == [], 5, what="the staged video released")


def test_a_direct_account_pulling_its_video_sends_post_info_with_the_url(tmp_path: Path) -> None:
    """mode: direct with pull_from_url: /video/init/ with video_url and the post_info; PUBLISH_COMPLETE."""
    accounts = {"bob": {"mode": "direct", "video_source": "pull_from_url",
                        "defaults": {"privacy_level": "SELF_ONLY", "title": "pulled"}}}
    with hosted_rig(tmp_path, accounts=accounts) as rig:
        rig.start()
        samples.write_mp4(tmp_path / "clip.mov", size=400_000, brand="qt  ")
        rig.drop("bob", "clip.mov", tmp_path / "clip.mov")

        sidecar = rig.wait_sidecar("bob", "clip.mov")

        (publish,) = rig.emulator.records.publishes
        assert (publish.mode, publish.source) == ("direct", "PULL_FROM_URL")
        assert publish.post_info["title"] == "pulled" and publish.post_info["privacy_level"] == "SELF_ONLY"
        assert sidecar["status"] == "PUBLISH_COMPLETE"


def test_the_media_host_serves_a_staged_video_in_ranges_as_tiktok_pulls_large_files(tmp_path: Path) -> None:
    """A staged video read back in four ranges (how a large pull is made) gives exactly the file."""
    with hosted_rig(tmp_path, accounts=PULL_INBOX) as rig:
        daemon = rig.start()
        assert daemon.mediahost is not None
        video = samples.write_mp4(tmp_path / "big.mp4", size=2_500_001)
        staged = daemon.mediahost.stage(video, now=rig.emulator.clock.now())
        pieces, step = [], 700_000
        connection = http.client.HTTPConnection("127.0.0.1", rig.port, timeout=5)
        try:
            for first in range(0, 2_500_001, step):
                last = min(first + step, 2_500_001) - 1
                connection.request("GET", f"/media/{staged.name}", headers={"Range": f"bytes={first}-{last}"})
                response = connection.getresponse()
                assert response.status == 206
                assert response.getheader("Content-Range") == f"bytes {first}-{last}/2500001"
                assert response.getheader("Content-Type") == "video/mp4"
                pieces.append(response.read())
        finally:
            connection.close()
        assert hashlib.sha256(b"".join(pieces)).hexdigest() == sha256(video)


class GatedFolderServer:
    """An existing web server for ``publish_dir``: serves the folder's files, but holds every answer
    until ``gate`` is set, so a pull stays in flight for as long as a test needs."""

    def __init__(self, folder: Path) -> None:
        self.gate = threading.Event()
        self.requests: list[str] = []
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                outer.requests.append(self.path)
                outer.gate.wait(30)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), functools.partial(Handler, directory=str(folder)))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[GatedFolderServer]:
    folder = tmp_path / "www"
    folder.mkdir()
    server = GatedFolderServer(folder)
    yield server
    server.close()


def test_a_pull_given_up_while_tiktok_is_still_downloading_is_cancelled(tmp_path: Path,
                                                                        gated: GatedFolderServer) -> None:
    """publish_dir behind a web server that holds the download: the status call fails and the item's
    budget is spent (max_attempts 1), so the item is given up; the daemon cancels the pull at TikTok
    (/cancel/), removes the staged copy from publish_dir, and the item lands in failed/."""
    prefix = f"http://127.0.0.1:{gated.port}/"
    with running_emulator(clock=OffsetClock(), processing_seconds=0, verified_url_prefixes=[prefix]) as emulator:
        rig = Rig(tmp_path / "rig", emulator, accounts=PULL_INBOX, overrides={
            "media_host.url_prefix": prefix, "media_host.publish_dir": str(tmp_path / "www"),
            "upload.max_attempts": 1})
        try:
            rig.start()
            emulator.faults.fail_next("status", 1, kind="5xx")
            samples.write_mp4(tmp_path / "clip.mp4", size=500_000)
            rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")

            sidecar = rig.wait_sidecar("alice", "clip.mp4", "failed")

            assert gated.requests, "the emulator never started pulling"
            cancels = [r for r in emulator.records.requests if r.endpoint == "cancel"]
            assert [(r.http_status, r.error_code) for r in cancels] == [(200, None)]
            (publish,) = emulator.records.publishes
            assert (publish.status, publish.fail_reason) == ("FAILED", "publish_cancelled")
            assert sidecar["error"]["code"] == "internal_error" and "gave up" in sidecar["error"]["message"]
            assert os.listdir(tmp_path / "www") == []
        finally:
            gated.gate.set()
            rig.stop()
