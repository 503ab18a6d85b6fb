"""Stage photos (and pull_from_url videos) under unguessable names where TikTok can fetch them.

TikTok pulls photo posts from a URL on a verified prefix, within an hour, without following
redirects. A staged file gets a name with 192 random bits and lives either in ``staging_dir``,
served by the built-in server (which sits behind the user's HTTPS proxy or tunnel and answers at
url_prefix's path + name), or in ``publish_dir``, a folder an existing web server already serves.
An index file in ``staging_dir`` remembers when each name expires, across restarts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

INDEX_NAME = "index.json"
_NAME = re.compile(r"[A-Za-z0-9_-]{32}(\.[a-z0-9]{1,8})?")  # token_urlsafe(24) + an optional extension
_TEMP_PREFIX, _TEMP_SUFFIX = ".watchfolder-", ".tmp"
_BLOCK = 1024 * 1024
_CONTENT_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".png": "image/png",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Staged:
    """One staged file: its public name, the URL TikTok pulls, where it lies, and when it may go."""

    name: str
    url: str
    path: Path
    expires_at: float


class MediaHost:
    """Stages files for TikTok to pull, serves them (or places them in publish_dir), and removes them."""

    def __init__(
        self, *, url_prefix: str, staging_dir: Path, serve: tuple[str, int] | None = None,
        publish_dir: Path | None = None, pull_window_seconds: float = 3600 + 600,
    ) -> None:
        """Given the settings, prepare the host (creating staging_dir); raise ValueError on a bad combination."""
        if not url_prefix.endswith("/"):
            raise ValueError(f"media_host.url_prefix must end with '/', got {url_prefix!r}")
        if (serve is None) == (publish_dir is None):
            raise ValueError("media_host needs exactly one of serve and publish_dir")
        if publish_dir is not None and Path(publish_dir).resolve() == Path(staging_dir).resolve():
            # The index lists every staged name; a web server must never be able to hand it out.
            raise ValueError("media_host.publish_dir must not be the staging folder")
        self.url_prefix = url_prefix
        self.staging_dir = Path(staging_dir)
        self.files_dir = Path(publish_dir) if publish_dir is not None else self.staging_dir
        self.pull_window_seconds = pull_window_seconds
        self._serve = serve
        self._url_path = urlsplit(url_prefix).path or "/"
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self._index = self._read_index()

    # --- the built-in server --------------------------------------------------------------

    def start(self) -> None:
        """Start the built-in server in a thread (no-op for publish_dir, or when already started)."""
        if self._serve is None or self._server is not None:
            return
        host, port = self._serve
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), _Handler, self.files_dir, self._url_path)
        # A short poll interval makes stop() return within 50 ms.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mediahost", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the built-in server and wait for its thread; safe to call when not started."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    @property
    def bound_port(self) -> int | None:
        """The port the built-in server listens on (useful when serve asked for port 0), else None."""
        return self._server.server_address[1] if self._server is not None else None

    # --- staging --------------------------------------------------------------------------

    def stage(self, source: Path, *, now: float, suffix: str | None = None) -> Staged:
        """Given a file and the time, place it under a fresh unguessable name and return where TikTok finds it.

        The name is 24 random bytes (URL-safe) plus ``suffix`` or the source's lower-cased extension.
        The file is hard-linked when that is possible and changes nothing about the source, else
        copied (temp file, then rename); it is readable by all (0644) and nothing is overwritten.
        Raise ValueError for a bad suffix, OSError if the source cannot be read or placed.
        """
        extension = (suffix if suffix is not None else Path(source).suffix).lower()
        if extension and not re.fullmatch(r"\.[a-z0-9]{1,8}", extension):
            raise ValueError(f"cannot stage with the extension {extension!r}")
        name = secrets.token_urlsafe(24) + extension
        expires_at = now + self.pull_window_seconds
        with self._lock:
            # The index entry comes first: a crash between the two steps leaves an entry for a
            # missing file (harmless), never a file that no sweep knows about.
            self._index[name] = expires_at
            self._write_index()
        self._place(Path(source), self.files_dir / name)
        return Staged(name, self.url_prefix + name, self.files_dir / name, expires_at)

    def _place(self, source: Path, dest: Path) -> None:
        if stat.S_IMODE(os.stat(source).st_mode) & 0o044 == 0o044:
            # Already readable by all, so a hard link needs no chmod, which would change the user's file too.
            try:
                os.link(source, dest)
                return
            except FileExistsError:
                raise
            except OSError:
                pass  # another filesystem (EXDEV), or one without hard links: copy instead
        temp = dest.with_name(f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}")
        try:
            with open(source, "rb") as src, open(temp, "xb") as dst:
                shutil.copyfileobj(src, dst, _BLOCK)
                os.fchmod(dst.fileno(), 0o644)
            if os.path.lexists(dest):  # 192 random bits make this unreachable; it guards the promise anyway
                raise FileExistsError(f"staged name already taken: {dest.name}")
            os.rename(temp, dest)
        finally:
            temp.unlink(missing_ok=True)

    def release(self, names: Iterable[str]) -> None:
        """Given staged names, remove their files and index entries (names that are not ours are ignored)."""
        with self._lock:
            for name in names:
                if _NAME.fullmatch(name):
                    (self.files_dir / name).unlink(missing_ok=True)
                    self._index.pop(name, None)
            self._write_index()

    def sweep(self, now: float) -> int:
        """Given the time, remove staged files whose pull window has passed; return how many were removed.

        Expiry comes from the index; in the private staging dir, staged-looking files the index does
        not know (and leftover temp files) expire by mtime. In publish_dir only indexed names and our
        temp files are touched, since an existing web server's folder holds other people's files.
        """
        removed = 0
        with self._lock:
            for name, expires_at in list(self._index.items()):
                if expires_at <= now:
                    removed += _unlink(self.files_dir / name)
                    del self._index[name]
            for entry in os.scandir(self.files_dir):
                ours = entry.name.startswith(_TEMP_PREFIX) and entry.name.endswith(_TEMP_SUFFIX)
                stray = self.files_dir == self.staging_dir and bool(_NAME.fullmatch(entry.name))
                candidate = (ours or (stray and entry.name not in self._index)) and entry.is_file(follow_symlinks=False)
                if candidate and entry.stat(follow_symlinks=False).st_mtime + self.pull_window_seconds <= now:
                    removed += _unlink(Path(entry.path))
            self._write_index()
        return removed

    def _read_index(self) -> dict[str, float]:
        try:
            data = json.loads((self.staging_dir / INDEX_NAME).read_text(encoding="utf-8"))
            return {str(k): float(v) for k, v in data["expires_at"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {}  # a damaged index: staging-dir files then expire by mtime

    def _write_index(self) -> None:
        temp = self.staging_dir / f"{_TEMP_PREFIX}index{_TEMP_SUFFIX}"
        temp.write_text(json.dumps({"schema": 1, "expires_at": self._index}, sort_keys=True), encoding="utf-8")
        os.replace(temp, self.staging_dir / INDEX_NAME)

    # --- probe ----------------------------------------------------------------------------

    def probe(self, timeout: float = 10) -> tuple[bool, str]:
        """Stage a tiny file, GET it through url_prefix without following redirects, compare, remove it.

        Also GET url_prefix itself: a server that lists the folder gives away the unguessable names.
        Return (True, what worked and any caveat) or (False, what went wrong and what to check).
        In serve mode the built-in server must be started first.
        """
        content = f"watchfolder probe {secrets.token_hex(16)}\n".encode()
        name = secrets.token_urlsafe(24) + ".txt"
        path = self.files_dir / name
        with open(path, "xb") as f:
            f.write(content)
            os.fchmod(f.fileno(), 0o644)
        url = self.url_prefix + name
        try:
            return self._fetch_and_compare(url, content, timeout)
        finally:
            path.unlink(missing_ok=True)

    def _fetch_and_compare(self, url: str, content: bytes, timeout: float) -> tuple[bool, str]:
        where = (f"the built-in server ({self._serve[0]}:{self.bound_port or self._serve[1]})" if self._serve
                 else f"the folder {self.files_dir}")
        try:
            response = requests.get(url, timeout=timeout, allow_redirects=False,
                                    headers={"User-Agent": "watchfolder-probe"})
        except requests.RequestException as exc:
            return False, f"GET {url} failed ({type(exc).__name__}): nothing answered for {where}"
        if 300 <= response.status_code < 400:
            return False, (f"GET {url} answered {response.status_code} (a redirect to "
                           f"{response.headers.get('Location', '?')}): TikTok does not follow redirects")
        if response.status_code != 200:
            return False, f"GET {url} answered HTTP {response.status_code}: url_prefix does not reach {where}"
        if response.content != content:
            return False, f"GET {url} answered 200 with other bytes: url_prefix does not reach {where}"
        try:
            listing = requests.get(self.url_prefix, timeout=timeout, allow_redirects=False)
            if listing.status_code == 200 and url.rsplit("/", 1)[1] in listing.text:
                return False, (f"GET {self.url_prefix} lists the folder: anyone could find the staged photos; "
                               "turn off directory listing there")
        except requests.RequestException:
            pass  # the file itself was served; a failing folder URL lists nothing
        message = f"GET {url} returned the staged file"
        parts = urlsplit(url)
        if parts.scheme != "https" or _is_ip(parts.hostname or ""):
            message += "; TikTok only fetches https:// URLs on a verified domain, so production needs both"
        return True, message


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled download must not keep the daemon from stopping
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], files_dir: Path,
                 url_path: str) -> None:
        self.files_dir = files_dir
        self.url_path = url_path
        super().__init__(address, handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Unsatisfiable(Exception):
    pass


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Given a Range header and a size, return (first, last) of one range, or None to send it all.

    Raise _Unsatisfiable when the range starts past the end. Multiple ranges and malformed headers
    are ignored (a full 200 is allowed by RFC 9110).
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or not (match[1] or match[2]):
        return None
    if match[1]:
        first = int(match[1])
        last = int(match[2]) if match[2] else size - 1
        if match[2] and last < first:
            return None  # an invalid range-spec: ignored, not refused
        if first >= size:
            raise _Unsatisfiable
        return first, min(last, size - 1)
    suffix = int(match[2])
    if suffix == 0 or size == 0:
        raise _Unsatisfiable
    return max(0, size - suffix), size - 1


class _Handler(BaseHTTPRequestHandler):
    """GET and HEAD of staged names only; everything else is 404 or 405. Never a listing, never a redirect."""

    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds per socket operation, so a vanished client frees its thread

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
        return name if _NAME.fullmatch(name) else None

    def _serve(self, *, send_body: bool) -> None:
        name = self._staged_name()
        try:
            fd = os.open(self.server.files_dir / name, os.O_RDONLY | os.O_NOFOLLOW) if name else -1
        except OSError:
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
                span = _byte_range(header, size) if header and not self.headers.get("If-Range") else None
            except _Unsatisfiable:
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
                    self.connection.sendfile(f, offset=first, count=last - first + 1)
                except OSError:  # the client went away (BrokenPipe, reset, timeout): nothing to tell anyone
                    self.close_connection = True
