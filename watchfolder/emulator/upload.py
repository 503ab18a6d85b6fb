"""The chunk ``PUT`` on an ``upload_url`` (reference §2.1).

Bytes stream in 1 MiB blocks into a reused buffer, then to a temporary file and the running SHA-256, so
memory stays about one block whatever the video's size. The body of a refused PUT is read and dropped
before answering, so the client sees the status rather than a reset connection.
"""

from __future__ import annotations

import json
import re
from io import BufferedIOBase
from typing import TYPE_CHECKING

from watchfolder.emulator.chunks import expected_range
from watchfolder.emulator.envelope import Response
from watchfolder.emulator.faults import Fault
from watchfolder.emulator.media import HEAD_BYTES
from watchfolder.emulator.publishes import Publish
from watchfolder.emulator.state import EmulatorState

if TYPE_CHECKING:
    from email.message import Message


BLOCK = 1024 * 1024
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm"})
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
DROP = 0  # the status of a Response that means "close the connection without answering"


def handle_put(emu: EmulatorState, query: dict[str, list[str]], headers: Message, rfile: BufferedIOBase,
               fault: Fault | None) -> Response:
    """Given the PUT's query, headers and body stream, consume the body and return the answer.

    201 when the last chunk is in, 206 before that (both with the progress ``Content-Range``); 400 bad
    headers; 403 expired URL; 404 unknown upload; 416 a range that is not the next chunk; 5xx or a
    dropped connection when ``fault`` says so.
    """
    length = body_length(headers)
    if length is None:
        return Response(400, b"", close=True, error_code="bad_content_length")
    upload_id = (query.get("upload_id") or [""])[0]
    with emu.lock:
        publish = emu.uploads.get(upload_id)
    if fault is not None:
        drain(rfile, length)
        if fault.kind == "drop":
            return Response(DROP, error_code="connection_dropped")
        status = 429 if fault.kind == "429" else fault.status
        return answer(status, publish, "injected_fault")
    return _put(emu, query, headers, rfile, length, publish)


def _put(emu: EmulatorState, query: dict[str, list[str]], headers: Message, rfile: BufferedIOBase, length: int,
         publish: Publish | None) -> Response:
    config = emu.config
    token = (query.get("upload_token") or [""])[0]
    with emu.lock:
        now = emu.clock.now()
        if publish is None or publish.upload_token != token or publish.failed_at is not None:
            return refuse(rfile, length, 404, None, "upload_not_found")
        assert publish.upload_expires_at is not None and publish.declared_size is not None
        if now >= publish.upload_expires_at:
            return refuse(rfile, length, 403, publish, "upload_url_expired")
        if (headers.get("Content-Type") or "").split(";")[0].strip().lower() not in VIDEO_TYPES:
            return refuse(rfile, length, 400, publish, "bad_content_type")
        match = _RANGE.fullmatch((headers.get("Content-Range") or "").strip())
        if match is None:
            return refuse(rfile, length, 400, publish, "bad_content_range")
        first, last, total = (int(group) for group in match.groups())
        if total != publish.declared_size or last < first or last - first + 1 != length:
            return refuse(rfile, length, 400, publish, "content_range_mismatch")
        if publish.in_flight:  # chunks are sequential; a parallel PUT never matches the progress
            return refuse(rfile, length, 416, publish, "range_not_satisfiable")
        previous = publish.chunk_ranges[-1] if publish.chunk_ranges else None
        if (first, last) == previous and config.resend_last_chunk == "accept":
            drain(rfile, length)
            done = publish.received == publish.declared_size
            return answer(201 if done else 206, publish, None)
        if publish.received == publish.declared_size:
            return refuse(rfile, length, 416, publish, "range_not_satisfiable")
        assert publish.chunk_size is not None and publish.total_chunk_count is not None
        wanted = expected_range(publish.declared_size, publish.chunk_size, publish.total_chunk_count,
                                len(publish.chunk_ranges))
        if (first, last) != wanted:
            return refuse(rfile, length, 416, publish, "range_not_satisfiable")
        publish.in_flight = True
    try:
        complete = receive(emu, publish, rfile, first, last)
    finally:
        with emu.lock:
            publish.in_flight = False
    if not complete:
        return Response(DROP, error_code="body_incomplete")
    return answer(201 if publish.received == publish.declared_size else 206, publish, None)


def receive(emu: EmulatorState, publish: Publish, rfile: BufferedIOBase, first: int, last: int) -> bool:
    """Read one chunk into the task's file and hash; return False (keeping nothing) if the body ends early.

    The hash is advanced on a copy and kept only when the whole chunk arrived, so a broken PUT can be
    sent again.
    """
    assert publish.temp_path is not None
    length = last - first + 1
    hasher = publish.hasher.copy()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    head = publish.head
    with open(publish.temp_path, "r+b" if first else "wb") as out:
        out.seek(first)
        left = length
        while left:
            count = rfile.readinto(view[:min(BLOCK, left)])
            if not count:
                out.truncate(first)
                return False
            out.write(view[:count])
            hasher.update(view[:count])
            if len(head) < HEAD_BYTES:
                head += bytes(view[:min(count, HEAD_BYTES - len(head))])
            left -= count
    with emu.lock:
        publish.hasher = hasher
        publish.head = head
        publish.received = last + 1
        publish.chunk_ranges.append((first, last))
        if publish.received == publish.declared_size:
            publish.sha256 = hasher.hexdigest()
            problem = emu.video_problem(publish, publish.temp_path, publish.received)
            emu.finish_transfer(publish, problem)
            emu.drop_file(publish)
    return True


def body_length(headers: Message) -> int | None:
    """Return the declared Content-Length, or None if it is missing, malformed or chunked encoding is used."""
    if headers.get("Transfer-Encoding"):
        return None
    raw = headers.get("Content-Length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def drain(rfile: BufferedIOBase, length: int) -> None:
    """Read and drop ``length`` bytes of body (or until the client stops sending)."""
    buffer = bytearray(min(BLOCK, max(length, 1)))
    view = memoryview(buffer)
    while length > 0:
        count = rfile.readinto(view[:min(len(buffer), length)])
        if not count:
            return
        length -= count


def refuse(rfile: BufferedIOBase, length: int, status: int, publish: Publish | None, reason: str) -> Response:
    drain(rfile, length)
    return answer(status, publish, reason)


def answer(status: int, publish: Publish | None, reason: str | None) -> Response:
    """Return a PUT answer; it carries the progress ``Content-Range`` whenever the upload is known
    (``bytes */TOTAL`` while nothing is in yet)."""
    headers: list[tuple[str, str]] = []
    if publish is not None and publish.declared_size is not None:
        done = publish.received
        progress = f"bytes 0-{done - 1}/{publish.declared_size}" if done else f"bytes */{publish.declared_size}"
        headers.append(("Content-Range", progress))
    body = b""
    if reason is not None:
        headers.append(("Content-Type", "application/json"))
        body = json.dumps({"error": {"code": reason, "message": reason.replace("_", " ")}}).encode()
    return Response(status, body, headers, error_code=reason, open_id=publish.open_id if publish else None,
                    publish_id=publish.publish_id if publish else None)
