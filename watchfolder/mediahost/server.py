"""The built-in server TikTok pulls staged files from: GET and HEAD of staged names, single byte ranges.

It sits behind the user's HTTPS proxy or tunnel and answers at url_prefix's path + name. Never a
listing, never a redirect, never a file that is not a regular staged file.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path
from typing import Any

from watchfolder.httpserve.handler import BoundedHandler
from watchfolder.httpserve.limits import Limits, Unsatisfiable, byte_range
from watchfolder.httpserve.server import BoundedServer
from watchfolder.mediahost.staging import STAGED_NAME

_CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".png": "image/png",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".txt": "text/plain; charset=utf-8",
}


class FileServer:
    """Serves the staged names of ``files_dir`` under ``url_path`` on ``address`` from a thread."""

    def __init__(self, address: tuple[str, int], files_dir: Path, url_path: str, limits: Limits | None = None) -> None:
        """Given where to listen, the folder, the URL path prefix and the limits, prepare (nothing is bound yet)."""
        self.address = address
        self.files_dir = files_dir
        self.url_path = url_path
        self.limits = limits or LIMITS
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a thread (no-op when already started); raise OSError when the address is taken."""
        if self._server is not None:
            return
        host, port = self.address
        self._server = _Server((host, port), _Handler, self.files_dir, self.url_path, self.limits)
        # A short poll interval makes stop() return within 50 ms.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mediahost", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and wait for the thread; safe to call when not started."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    @property
    def bound_port(self) -> int | None:
        """The port listened on (useful when asked for port 0), else None."""
        return self._server.server_address[1] if self._server is not None else None


# TikTok fetches a handful of files at a time; a file must be sent within the pull window's hour.
# A file must go at 32 KiB/s on average at least (after a minute's grace): a 20 MB photo gets ten
# minutes, a 4 GB video the whole hour; a client that reads a trickle does not hold a worker longer.
LIMITS = Limits(workers=16, max_connections=256, header_seconds=10, request_seconds=3600, io_seconds=60,
                max_body=1024,  # nothing is ever uploaded here; a small body still gets its 405
                min_rate=32 * 1024, rate_grace_seconds=60)


class _Server(BoundedServer):
    def __init__(self, address: tuple[str, int], handler: type[BoundedHandler], files_dir: Path,
                 url_path: str, limits: Limits = LIMITS) -> None:
        self.files_dir = files_dir
        self.url_path = url_path
        super().__init__(address, handler, limits)


class _Handler(BoundedHandler):
    """GET and HEAD of staged names only; everything else is 404 or 405. Never a listing, never a redirect."""

    server: _Server

    def version_string(self) -> str:
        return "watchfolder"  # no Python version in the Server header

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing: TikTok's fetches are not worth a stderr line each."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # any method other than GET and HEAD
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        self.close_connection = True  # a body we did not read may follow
        self._plain(405, "method not allowed\n", {"Allow": "GET, HEAD"})

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _plain(self, code: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(code)
        for key, value in {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)),
                           **(headers or {})}.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _staged_name(self) -> str | None:
        # The raw request target is matched as is, never decoded: a staged name has no '%', '/' or
        # '.', so '..', '%2e%2e', encoded slashes and absolute paths cannot match.
        target = self.path.split("?", 1)[0].split("#", 1)[0]
        prefix = self.server.url_path
        if not target.startswith(prefix):
            return None
        name = target[len(prefix):]
        return name if STAGED_NAME.fullmatch(name) else None

    def _serve(self, *, send_body: bool) -> None:
        name = self._staged_name()
        try:
            fd = os.open(self.server.files_dir / name, os.O_RDONLY | os.O_NOFOLLOW) if name else -1
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):  # out of descriptors: a moment, not a missing file
                self.close_connection = True
                self._plain(503, "busy, try again\n", {"Retry-After": "1"})
                return
            fd = -1
        if fd < 0:
            self._plain(404, "not found\n")
            return
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self._plain(404, "not found\n")
                return
            size = info.st_size
            header = self.headers.get("Range")
            try:
                # If-Range compares validators we never send, so a Range under it is answered in full.
                span = byte_range(header, size) if header and not self.headers.get("If-Range") else None
            except Unsatisfiable:
                self._plain(416, "range not satisfiable\n", {"Content-Range": f"bytes */{size}"})
                return
            first, last = span if span is not None else (0, size - 1)
            self.send_response(206 if span is not None else 200)
            self.send_header("Content-Type", _CONTENT_TYPES.get(Path(name or "").suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Cache-Control", "no-store")  # a proxy has no business keeping the user's photos
            self.send_header("X-Content-Type-Options", "nosniff")
            if span is not None:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if send_body and last >= first:
                try:
                    self.send_file_range(f, first, last - first + 1)
                except (OSError, EOFError):  # the client went away or was too slow, or the file shrank
                    self.close_connection = True
