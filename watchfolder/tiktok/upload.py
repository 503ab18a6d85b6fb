"""The chunk PUT streamer: sends one byte range of a file to TikTok's upload_url.

Built on ``http.client`` rather than requests so the body can go from disk to socket without
passing through Python: over plain HTTP with ``socket.sendfile`` (zero-copy), over HTTPS in 1 MiB
blocks read into one reused buffer. A chunk (up to 128 MB) is never held in memory. One
persistent connection is kept per host, because every chunk of an upload goes to the same place.
The proxy and CA settings are the ones requests applies to the JSON calls (``transport``).

The upload_url is used verbatim, query string included. Its ``upload_token`` is a credential,
so messages name only the host, never the URL.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import select
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from watchfolder import __version__
from watchfolder.core.errors import MediaError, TikTokError
from watchfolder.core.text import display_name
from watchfolder.tiktok import codes, transport
from watchfolder.tiktok.sendbody import Hasher, send_body

# "bytes 0-N/T": TikTok holds bytes 0..N so far; "bytes */T": it holds none yet.
_PROGRESS = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(?:\d+|\*)")

_CODE_FOR_STATUS = {403: "upload_url_expired", 404: "upload_not_found", 416: "range_mismatch", 429:
                    "rate_limit_exceeded"}


@dataclass(frozen=True)
class ChunkAck:
    """TikTok accepted a chunk: it now holds bytes ``0 .. next_offset - 1``; ``complete`` is its 201
    (every byte arrived, processing starts)."""

    next_offset: int
    complete: bool


class RangeMismatchError(TikTokError):
    """A 416: TikTok's progress differs from the range we sent. ``resume_offset`` is where TikTok
    says the next chunk must start (None when its answer did not say)."""

    def __init__(self, message: str, *, resume_offset: int | None, log_id: str = "") -> None:
        policy = codes.for_error("range_mismatch", 416)
        super().__init__("range_mismatch", message, action=policy.action, log_id=log_id, http_status=416,
                         advice=policy.advice)
        self.resume_offset = resume_offset


class ChunkUploader:
    """Sends chunks over one persistent connection per (scheme, host). Not thread-safe: one per worker."""

    def __init__(self, *, timeout: float = 60.0, ssl_context: ssl.SSLContext | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        """``timeout`` bounds each socket operation; ``ssl_context`` replaces the trust the environment
        gives (``transport.ssl_context``: REQUESTS_CA_BUNDLE, SSL_CERT_FILE, else the system's roots);
        ``env`` (default os.environ) names the proxy (HTTPS_PROXY, NO_PROXY, …) as for requests."""
        self.timeout = timeout
        self._env = os.environ if env is None else env
        self._ssl_context = ssl_context
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def put_chunk(self, upload_url: str, source: Path | io.BufferedIOBase, first: int, last: int, total: int,
                  content_type: str, *, name: str | None = None,
                  hasher: Hasher | None = None) -> ChunkAck:
        """Given an upload_url and the inclusive byte range ``first..last`` of the ``total``-byte file
        ``source`` (a path, or a binary file already open, which is read by offset and left open),
        PUT those bytes and return TikTok's progress. ``name`` is the file's name for messages;
        ``hasher`` (optional) is given every byte sent, in order (``sendbody.send_body``).

        Raise TikTokError: ``range_mismatch`` (a RangeMismatchError with ``resume_offset``, RETRY),
        ``upload_url_expired`` / ``upload_not_found`` (REINIT), ``upload_rejected`` (FAIL),
        ``internal_error`` / ``network_error`` (RETRY). Raise MediaError ``file_changed`` if the file
        no longer holds the range, ValueError for a range that does not fit ``total``.
        """
        if not 0 <= first <= last < total:
            raise ValueError(f"bad chunk range {first}-{last}/{total}")
        parts = urlsplit(upload_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("upload_url must be an absolute http(s) URL")
        target = upload_url[upload_url.index(parts.netloc) + len(parts.netloc):] or "/"
        if target.startswith("?"):
            target = "/" + target
        key = (parts.scheme, parts.netloc)
        count = last - first + 1
        shown = display_name(name or (source.name if isinstance(source, Path) else "the file"))
        with open(source, "rb") if isinstance(source, Path) else contextlib.nullcontext(source) as file:
            if os.fstat(file.fileno()).st_size < last + 1:
                raise MediaError("file_changed", f"{shown} is shorter than the {total:,} bytes being sent")
            try:
                connection = self._connection(key)
            except OSError as exc:
                raise _network_error(parts.netloc, exc) from None
            try:
                connection.putrequest("PUT", target, skip_accept_encoding=True)
                connection.putheader("User-Agent", f"watchfolder/{__version__}")
                connection.putheader("Content-Type", content_type)
                connection.putheader("Content-Length", str(count))
                connection.putheader("Content-Range", f"bytes {first}-{last}/{total}")
                connection.endheaders()
                sent = send_body(connection, file, first, count, hasher=hasher)
            except (OSError, http.client.HTTPException) as exc:
                return self._answer_after_failed_send(key, connection, parts.netloc, first, last, exc)
            if sent != count:
                self._drop(key)
                raise MediaError("file_changed", f"{shown} shrank while it was being sent")
        return self._answer(key, connection, parts.netloc, first, last)

    def close(self) -> None:
        """Close every kept connection."""
        for key in list(self._connections):
            self._drop(key)

    def _connection(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        """Return the kept connection for ``key``, or a new one if there is none or the server has
        closed it while idle (a readable idle socket means EOF or junk: either way, start afresh)."""
        connection = self._connections.get(key)
        if connection is not None and connection.sock is not None:
            readable, _, _ = select.select([connection.sock], [], [], 0)
            if not readable:
                return connection
        if connection is not None:
            self._drop(key)
        scheme, netloc = key
        try:
            proxy = transport.proxy_for(f"{scheme}://{netloc}/", self._env)
        except ValueError as exc:
            raise OSError(f"the proxy setting cannot be used: {exc}") from None
        # Through a proxy: a CONNECT tunnel to the upload host (TLS end to end; sendfile on plain HTTP).
        host, port = (proxy.host, proxy.port) if proxy else (netloc, None)
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = transport.ssl_context(self._env)
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl_context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        if proxy is not None:
            connection.set_tunnel(netloc, headers=proxy.headers())
        connection.connect()
        if connection.sock is not None:
            # The last segment of a chunk must not sit waiting for the previous one's ACK.
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections[key] = connection
        return connection

    def _answer(self, key: tuple[str, str], connection: http.client.HTTPConnection, host: str,
                first: int, last: int) -> ChunkAck:
        """Read the PUT's answer and turn it into a ChunkAck or a TikTokError."""
        try:
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key)
            raise _network_error(host, exc) from None
        if response.will_close:
            self._drop(key)
        return _judge(response, body, host, first, last)

    def _answer_after_failed_send(self, key: tuple[str, str], connection: http.client.HTTPConnection,
                                  host: str, first: int, last: int, exc: Exception) -> ChunkAck:
        """The request broke off. The server may have answered before reading the whole body (an
        expired URL, say) and closed: its answer says more than our broken pipe, so read it if it
        is there. The connection is spent either way."""
        if isinstance(exc, TimeoutError):
            # A stalled server: waiting for an answer as well would double the timeout.
            self._drop(key)
            raise _network_error(host, exc) from None
        try:
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self._drop(key)
            raise _network_error(host, exc) from None
        self._drop(key)
        if response.status < 300:
            # A success claimed for bytes we could not finish sending is not to be trusted.
            raise _network_error(host, exc)
        return _judge(response, body, host, first, last)

    def _drop(self, key: tuple[str, str]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()


def _network_error(host: str, exc: Exception) -> TikTokError:
    """The connection failed: name the host and the kind of failure, never the URL (it holds a token)."""
    policy = codes.for_error("network_error", None)
    kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
    text = str(exc)
    if text.startswith(("Tunnel connection failed", "the proxy setting")):  # the proxy's answer: no URL in it
        kind = f"through the proxy: {text}"
    return TikTokError("network_error", f"upload to {host}: {kind}", action=policy.action,
                       advice=policy.advice)


def _progress(content_range: str | None) -> int | None:
    """Return the next offset a progress header implies: N + 1 for ``bytes 0-N/T``, 0 for
    ``bytes */T``; None without a readable header."""
    match = _PROGRESS.search(content_range or "")
    if match is None:
        return None
    return int(match.group(2)) + 1 if match.group(2) is not None else 0


def _judge(response: http.client.HTTPResponse, body: bytes, host: str, first: int, last: int) -> ChunkAck:
    """Turn a PUT answer into a ChunkAck (206, 201) or raise the TikTokError its status means."""
    status = response.status
    content_range = response.getheader("Content-Range")
    if status in (201, 206):
        next_offset = _progress(content_range)
        return ChunkAck(next_offset=last + 1 if next_offset is None else next_offset, complete=status == 201)
    detail, log_id = _envelope_error(body)
    message = f"upload to {host}: HTTP {status} for bytes {first}-{last}" + (f": {detail}" if detail else "")
    if status == 416:
        raise RangeMismatchError(message, resume_offset=_progress(content_range), log_id=log_id)
    if status >= 500:
        code = "internal_error"
    elif status >= 400:
        code = _CODE_FOR_STATUS.get(status, "upload_rejected")
    else:
        code = "bad_response"
    policy = codes.for_error(code, status)
    raise TikTokError(code, message, action=policy.action, log_id=log_id, http_status=status,
                      advice=policy.advice)


def _envelope_error(body: bytes) -> tuple[str, str]:
    """Return (message, log_id) from a TikTok-style JSON error body, or empty strings. Anything
    else in the body is not repeated: we do not know what it echoes back."""
    try:
        error = json.loads(body).get("error") or {}
        return str(error.get("message") or ""), str(error.get("log_id") or "")
    except (ValueError, AttributeError):
        return "", ""
