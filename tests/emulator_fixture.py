"""The emulator in tests: start one (``running_emulator``), make media bytes TikTok's checks accept or refuse,
and serve files for PULL_FROM_URL (``MediaServer``). Test code, so it lives here rather than in the package."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from watchfolder.emulator.clock import Clock, ManualClock
from watchfolder.emulator.config import EmulatorConfig
from watchfolder.emulator.core import Emulator

# What a test usually wants: processing that finishes at once, the clock under the test's control, and
# photo URLs on the test's own http://127.0.0.1 server.
TEST_DEFAULTS: dict[str, Any] = {"processing_seconds": 0.0, "require_https_urls": False}


@contextmanager
def running_emulator(clock: Clock | None = None, **config: Any) -> Iterator[Emulator]:
    """Yield an emulator serving on a free 127.0.0.1 port in a background thread; stop it afterwards.

    ``config`` holds EmulatorConfig fields over TEST_DEFAULTS; ``clock`` defaults to a ManualClock, so
    time moves only when the test calls ``emu.clock.advance``. ``emu.base_url`` is the API base URL.
    """
    emulator = Emulator(EmulatorConfig(**{**TEST_DEFAULTS, **config}), clock=clock or ManualClock())
    emulator.start("127.0.0.1", 0)
    try:
        yield emulator
    finally:
        emulator.stop()


def box(kind: bytes, payload: bytes) -> bytes:
    """Return one MP4 box: 32-bit size, four-letter type, payload."""
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def fake_video(size: int, container: str = "mp4", duration_sec: int | None = 5) -> bytes:
    """Return ``size`` bytes that pass TikTok's container check as ``container`` (mp4, mov or webm).

    MP4/MOV get ``ftyp`` + ``moov/mvhd`` (with ``duration_sec``, timescale 1000) + an ``mdat`` filling
    the rest with random bytes, so the boxes tile the file. Raise ValueError if ``size`` is too small.
    """
    if container == "webm":
        header = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
        if size < len(header):
            raise ValueError("too small for a WebM header")
        return header + os.urandom(size - len(header))
    brand = b"qt  " if container == "mov" else b"isom"
    head = box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand)
    if duration_sec is not None:
        mvhd = b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 1000, duration_sec * 1000) + bytes(80)
        head += box(b"moov", box(b"mvhd", mvhd))
    if size < len(head) + 8:
        raise ValueError(f"too small for an {container} file: at least {len(head) + 8} bytes")
    return head + struct.pack(">I4s", size - len(head), b"mdat") + os.urandom(size - len(head) - 8)


def fake_image(kind: str = "jpeg", size: int = 2048) -> bytes:
    """Return ``size`` bytes starting with the magic bytes of ``kind`` (jpeg, webp or png)."""
    heads = {"jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
             "png": b"\x89PNG\r\n\x1a\n"}
    return heads[kind] + os.urandom(size - len(heads[kind]))


class MediaServer:
    """A tiny HTTP server on 127.0.0.1 serving ``files`` (path -> bytes) for PULL_FROM_URL tests.

    ``redirects`` (path -> location) answer 302; an unknown path is 404. Clearing ``gate`` holds every
    body until it is set again, so a test can cancel a download in flight.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.gate = threading.Event()
        self.gate.set()
        self.requests: list[str] = []
        media = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                media.requests.append(self.path)
                if self.path in media.redirects:
                    self.send_response(302)
                    self.send_header("Location", media.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = media.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                media.gate.wait(30)
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    def add(self, path: str, body: bytes) -> str:
        """Serve ``body`` at ``path``; return its full URL."""
        self.files[path] = body
        return self.base_url + path

    def close(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
