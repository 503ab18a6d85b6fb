"""The TikTok client and the chunk uploader, against real HTTP servers on 127.0.0.1.

Two servers: a tiny scripted one (this file) for answers TikTok's emulator has no reason to
give (HTML from a proxy, a 64-bit post id, an answer before the body was read), and the emulator
itself for the real protocol.
"""

from __future__ import annotations

import ast
import hashlib
import http.server
import io
import json
import logging
import os
import queue
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.emulator_fixture import running_emulator
from watchfolder.core.errors import MediaError, TikTokError
from watchfolder.core.model import Action
from watchfolder.emulator.core import Emulator
from watchfolder.emulator.envelope import CODES_OF_ENDPOINT, status_for
from watchfolder.tiktok import chunks, client, codes, sendbody, upload

TOKEN = "act.secret-access-token-for-tests"


@dataclass
class Answer:
    """One scripted answer. ``drop`` closes without answering; ``read_body=False`` answers before
    reading the request body; ``close_after`` closes after answering without saying so."""

    status: int = 200
    body: bytes = b'{"data": {}, "error": {"code": "ok", "message": "", "log_id": "L0"}}'
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    read_body: bool = True
    close_after: bool = False


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    length: int
    sha256: str
    client_port: int


class Scripted(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: queue.Queue[Answer] = queue.Queue()
        self.seen: list[Seen] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, *answers: Answer) -> None:
        for answer in answers:
            self.answers.put(answer)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def log_message(self, format: str, *args: Any) -> None:  # the base class's name
        pass

    def do_POST(self) -> None:  # http.server's naming
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            answer = self.server.answers.get_nowait()
        except queue.Empty:
            answer = Answer()
        length = int(self.headers.get("Content-Length", "0"))
        digest, kept, remaining = hashlib.sha256(), bytearray(), length if answer.read_body else 0
        while remaining:
            block = self.rfile.read(min(remaining, 1 << 20))
            if not block:
                break
            digest.update(block)
            if len(kept) < 1 << 20:
                kept += block
            remaining -= len(block)
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers), bytes(kept), length,
                                     digest.hexdigest(), self.client_address[1]))
        time.sleep(answer.delay)
        if answer.drop:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        if not answer.read_body:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)
        self.close_connection = answer.close_after or not answer.read_body


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(scripted: Scripted) -> Iterator[client.TikTokClient]:
    tiktok = client.TikTokClient(scripted.base_url, timeout=5)
    yield tiktok
    tiktok.close()


@pytest.fixture
def uploader() -> Iterator[upload.ChunkUploader]:
    streamer = upload.ChunkUploader(timeout=5)
    yield streamer
    streamer.close()


def envelope(data: dict[str, Any] | None = None, code: str = "ok", message: str = "", log_id: str = "L1") -> bytes:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "log_id": log_id}}
    if data is not None:
        body["data"] = data
    return json.dumps(body).encode()


def write_file(path: Path, size: int) -> str:
    """Write ``size`` bytes of varied content to ``path``; return their sha256."""
    block = hashlib.sha256(path.name.encode()).digest() * 32768  # 1 MiB, not all zeros
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            file.write(block[: min(remaining, len(block))])
            remaining -= min(remaining, len(block))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raised(call: Any) -> TikTokError:
    with pytest.raises(TikTokError) as info:
        call()
    return info.value


# --- the JSON endpoints, against the scripted server --------------------------------------------


def test_inbox_file_init_sends_tiktoks_source_info_and_returns_the_upload_url(
        scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope({"publish_id": "v_inbox_file~v2.1", "upload_url": "http://u/?a=1"})))

    result = api.init_inbox_video(TOKEN, plan=chunks.plan(50_000_123, 10_000_000))  # TikTok's own example

    assert result == client.InitResult("v_inbox_file~v2.1", "http://u/?a=1", "L1")
    request = scripted.seen[0]
    assert (request.method, request.target) == ("POST", "/v2/post/publish/inbox/video/init/")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(request.body) == {"source_info": {
        "source": "FILE_UPLOAD", "video_size": 50_000_123, "chunk_size": 10_000_000, "total_chunk_count": 5}}


def test_direct_url_init_sends_post_info_and_the_url(scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope({"publish_id": "v_pub_url~v2.2"})))
    post_info = {"privacy_level": "SELF_ONLY", "title": "cat #cats", "brand_content_toggle": False}

    result = api.init_direct_video(TOKEN, post_info=post_info, video_url="https://m.example/tiktok/a.mp4")

    assert (result.publish_id, result.upload_url) == ("v_pub_url~v2.2", None)
    assert scripted.seen[0].target == "/v2/post/publish/video/init/"
    assert json.loads(scripted.seen[0].body) == {
        "post_info": post_info, "source_info": {"source": "PULL_FROM_URL", "video_url": "https://m.example/tiktok/a.mp4"}}


def test_photo_init_sends_the_photos_in_order_with_the_cover(scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope({"publish_id": "p_pub_url~v2.3"})))
    urls = ["https://m.example/tiktok/2.jpg", "https://m.example/tiktok/10.jpg"]

    result = api.init_photos(TOKEN, post_mode="MEDIA_UPLOAD", post_info={"title": "trip"}, photo_urls=urls,
                             cover_index=1)

    assert result.publish_id == "p_pub_url~v2.3"
    assert scripted.seen[0].target == "/v2/post/publish/content/init/"
    assert json.loads(scripted.seen[0].body) == {
        "media_type": "PHOTO", "post_mode": "MEDIA_UPLOAD", "post_info": {"title": "trip"},
        "source_info": {"source": "PULL_FROM_URL", "photo_images": urls, "photo_cover_index": 1}}


@pytest.mark.parametrize("sources", [{}, {"plan": chunks.plan(10), "video_url": "https://m.example/a.mp4"}])
def test_a_video_init_needs_exactly_one_source_and_sends_nothing_otherwise(
        scripted: Scripted, api: client.TikTokClient, sources: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        api.init_inbox_video(TOKEN, **sources)

    assert scripted.seen == []


def test_a_file_init_without_an_upload_url_is_an_unreadable_answer(
        scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope({"publish_id": "v_inbox_file~v2.1"})))

    error = raised(lambda: api.init_inbox_video(TOKEN, plan=chunks.plan(10)))

    assert (error.code, error.action) == ("bad_response", Action.RETRY)


def test_status_keeps_64_bit_post_ids_exact(scripted: Scripted, api: client.TikTokClient) -> None:
    raw = (b'{"data": {"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": '
           b'[7234567890123456789, 9007199254740993], "uploaded_bytes": 12000000}, '
           b'"error": {"code": "ok", "message": "", "log_id": "L"}}')
    scripted.script(Answer(body=raw))

    status = api.status(TOKEN, "v_pub_file~v2-1.1")

    assert status == client.PublishStatus("PUBLISH_COMPLETE", None, 12_000_000, None,
                                          ("7234567890123456789", "9007199254740993"))
    assert json.loads(scripted.seen[0].body) == {"publish_id": "v_pub_file~v2-1.1"}


def test_a_failed_publish_is_returned_with_its_fail_reason_not_raised(
        scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope({"status": "FAILED", "fail_reason": "picture_size_check_failed",
                                          "publicaly_available_post_id": [], "uploaded_bytes": 10000})))

    status = api.status(TOKEN, "p_pub_url~v2.3")

    assert (status.status, status.fail_reason, status.post_ids) == ("FAILED", "picture_size_check_failed", ())


def test_creator_info_is_read_into_its_fields(scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope({
        "creator_avatar_url": "https://a", "creator_username": "tiktok", "creator_nickname": "TikTok Official",
        "privacy_level_options": ["PUBLIC_TO_EVERYONE", "SELF_ONLY"], "comment_disabled": False,
        "duet_disabled": False, "stitch_disabled": True, "max_video_post_duration_sec": 300})))

    info = api.creator_info(TOKEN)

    assert info == client.CreatorInfo("TikTok Official", "tiktok", ("PUBLIC_TO_EVERYONE", "SELF_ONLY"),
                                      False, False, True, 300)
    assert scripted.seen[0].target == "/v2/post/publish/creator_info/query/"


def test_a_cap_refused_with_http_200_is_still_an_error(scripted: Scripted, api: client.TikTokClient) -> None:
    """creator_info says "cannot post now" with HTTP 200: the envelope decides, not the status."""
    scripted.script(Answer(body=envelope(code="spam_risk_too_many_posts", message="cap", log_id="202611")))

    error = raised(lambda: api.creator_info(TOKEN))

    assert (error.code, error.action, error.http_status, error.log_id) == (
        "spam_risk_too_many_posts", Action.WAIT, 200, "202611")
    assert error.as_dict() == {"code": "spam_risk_too_many_posts", "message": error.advice, "log_id": "202611"}


@pytest.mark.parametrize("code", ["invalid_param", "invalid_params"])
def test_both_spellings_of_a_bad_parameter_fail_the_item(scripted: Scripted, api: client.TikTokClient,
                                                         code: str) -> None:
    scripted.script(Answer(status=400, body=envelope(code=code, message="The chunk size is invalid")))

    error = raised(lambda: api.init_inbox_video(TOKEN, plan=chunks.plan(10)))

    assert (error.code, error.action, error.message) == (code, Action.FAIL, "The chunk size is invalid")


@pytest.mark.parametrize(("answer", "code"), [
    (Answer(status=500, body=envelope(code="")), "internal_error"),
    (Answer(status=502, body=b"<html>Bad Gateway</html>"), "internal_error"),
    (Answer(status=429, body=b"slow down"), "rate_limit_exceeded"),
    (Answer(status=200, body=b"<html>captive portal</html>"), "bad_response"),
    (Answer(status=404, body=b"not found"), "bad_response"),
    (Answer(status=503, body=envelope(code="ok")), "internal_error"),
], ids=["5xx-blank-code", "5xx-html", "429-text", "200-html", "404-text", "5xx-claiming-ok"])
def test_an_answer_without_a_usable_code_is_named_by_its_status_and_retried(
        scripted: Scripted, api: client.TikTokClient, answer: Answer, code: str) -> None:
    scripted.script(answer)

    error = raised(lambda: api.status(TOKEN, "x"))

    assert (error.code, error.action, error.http_status) == (code, Action.RETRY, answer.status)


def test_an_unknown_4xx_code_fails_the_item_with_generic_advice(
        scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(status=400, body=envelope(code="something_new", message="new")))

    error = raised(lambda: api.status(TOKEN, "x"))

    assert (error.code, error.action, error.message) == ("something_new", Action.FAIL, "new")
    assert error.advice


def test_cancel_returns_nothing_and_a_finished_task_is_reported(
        scripted: Scripted, api: client.TikTokClient) -> None:
    scripted.script(Answer(body=envelope()), Answer(status=400, body=envelope(code="publish_not_cancellable")))

    assert api.cancel(TOKEN, "v_pub_url~v2.2") is None
    error = raised(lambda: api.cancel(TOKEN, "v_pub_url~v2.2"))
    assert (error.code, error.action) == ("publish_not_cancellable", Action.FAIL)
    assert scripted.seen[0].target == "/v2/post/publish/cancel/"


@pytest.mark.parametrize("answer", [Answer(drop=True), Answer(delay=1.0)], ids=["dropped", "slow"])
def test_no_answer_is_a_network_error_to_retry(scripted: Scripted, answer: Answer) -> None:
    scripted.script(answer)
    tiktok = client.TikTokClient(scripted.base_url, timeout=0.3)

    error = raised(lambda: tiktok.status(TOKEN, "x"))

    assert (error.code, error.action, error.http_status) == ("network_error", Action.RETRY, None)
    tiktok.close()


def test_a_refused_connection_is_a_network_error_to_retry() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    tiktok = client.TikTokClient(f"http://127.0.0.1:{port}", timeout=2)

    error = raised(lambda: tiktok.creator_info(TOKEN))

    assert (error.code, error.action) == ("network_error", Action.RETRY)


def test_the_token_never_appears_in_errors_or_logs(scripted: Scripted) -> None:
    scripted.script(Answer(status=401, body=envelope(code="access_token_invalid")), Answer(drop=True),
                    Answer(status=502, body=b"gateway"))
    tiktok = client.TikTokClient(scripted.base_url, timeout=2)
    errors = []
    # Tests run at warning level; open up to debug so every line the client writes is seen.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            errors.append(raised(lambda: tiktok.init_direct_video(
                TOKEN, post_info={"privacy_level": "SELF_ONLY"}, plan=chunks.plan(10))))
    tiktok.close()

    assert [error.action for error in errors] == [Action.REFRESH, Action.RETRY, Action.RETRY]
    assert logs, "each failed call leaves a log line"
    text = repr(logs) + "".join(f"{error!s}{error!r}{error.message}{error.advice}{error.as_dict()}"
                                for error in errors)
    assert TOKEN not in text and "secret-access-token" not in text


# --- the chunk uploader, against the scripted server --------------------------------------------

UPLOAD_TOKEN = "tok%2Fsecret-upload-token"


def upload_url(server: Scripted) -> str:
    return f"{server.base_url}/upload/?upload_id=77&upload_token={UPLOAD_TOKEN}"


def test_a_chunk_goes_to_the_upload_url_verbatim_with_tiktoks_three_headers(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_file(video, 3_000_000)
    scripted.script(Answer(status=206, body=b"", headers={"Content-Range": "bytes 0-999999/3000000"}))

    ack = uploader.put_chunk(upload_url(scripted), video, 0, 999_999, 3_000_000, "video/mp4")

    assert ack == upload.ChunkAck(next_offset=1_000_000, complete=False)
    request = scripted.seen[0]
    assert (request.method, request.target) == ("PUT", f"/upload/?upload_id=77&upload_token={UPLOAD_TOKEN}")
    assert request.headers["Content-Type"] == "video/mp4"
    assert request.headers["Content-Length"] == "1000000"
    assert request.headers["Content-Range"] == "bytes 0-999999/3000000"
    assert request.sha256 == hashlib.sha256(video.read_bytes()[:1_000_000]).hexdigest()


def test_chunks_share_one_kept_connection_and_an_ack_without_progress_means_this_chunk(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_file(video, 2_000_000)
    scripted.script(Answer(status=206, body=b""), Answer(status=201, body=b""))

    first = uploader.put_chunk(upload_url(scripted), video, 0, 999_999, 2_000_000, "video/mp4")
    second = uploader.put_chunk(upload_url(scripted), video, 1_000_000, 1_999_999, 2_000_000, "video/mp4")

    assert (first, second) == (upload.ChunkAck(1_000_000, False), upload.ChunkAck(2_000_000, True))
    assert scripted.seen[0].client_port == scripted.seen[1].client_port


def test_a_connection_the_server_closed_while_idle_is_replaced_not_reported(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_file(video, 2_000_000)
    scripted.script(Answer(status=206, body=b"", close_after=True), Answer(status=201, body=b""))

    uploader.put_chunk(upload_url(scripted), video, 0, 999_999, 2_000_000, "video/mp4")
    time.sleep(0.05)  # let the server's close reach us, as an idle keep-alive timeout would
    ack = uploader.put_chunk(upload_url(scripted), video, 1_000_000, 1_999_999, 2_000_000, "video/mp4")

    assert ack.complete
    assert scripted.seen[0].client_port != scripted.seen[1].client_port


def test_an_answer_sent_before_the_body_was_read_is_still_understood(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    """A server that refuses an expired URL at once and hangs up: the 403 counts, not our broken pipe."""
    video = tmp_path / "clip.mp4"
    write_file(video, 24_000_000)
    scripted.script(Answer(status=403, body=b"", read_body=False))

    error = raised(lambda: uploader.put_chunk(upload_url(scripted), video, 0, 23_999_999, 24_000_000,
                                              "video/mp4"))

    assert (error.code, error.action, error.http_status) == ("upload_url_expired", Action.REINIT, 403)


@pytest.mark.parametrize(("answer", "code", "action"), [
    (Answer(status=404, body=b""), "upload_not_found", Action.REINIT),
    (Answer(status=400, body=envelope(code="bad", message="Content-Length mismatch", log_id="LX")),
     "upload_rejected", Action.FAIL),
    (Answer(status=503, body=b"busy"), "internal_error", Action.RETRY),
    (Answer(drop=True), "network_error", Action.RETRY),
    (Answer(status=200, body=b""), "bad_response", Action.RETRY),
], ids=["404", "400", "503", "drop", "200"])
def test_a_refused_chunk_raises_the_action_its_status_means_without_the_upload_token(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path, answer: Answer, code: str,
        action: Action) -> None:
    video = tmp_path / "clip.mp4"
    write_file(video, 1000)
    scripted.script(answer)

    error = raised(lambda: uploader.put_chunk(upload_url(scripted), video, 0, 999, 1000, "video/mp4"))

    assert (error.code, error.action) == (code, action)
    assert "secret-upload-token" not in f"{error}{error!r}{error.message}"


@pytest.mark.parametrize(("headers", "resume_offset"), [
    ({"Content-Range": "bytes */1000"}, 0), ({}, None), ({"Content-Range": "garbage"}, None)])
def test_a_range_mismatch_says_where_to_resume_when_tiktok_told(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path, headers: dict[str, str],
        resume_offset: int | None) -> None:
    """"bytes */T" is TikTok's progress when it holds nothing yet: start again from byte 0."""
    video = tmp_path / "clip.mp4"
    write_file(video, 1000)
    scripted.script(Answer(status=416, body=b"", headers=headers))

    error = raised(lambda: uploader.put_chunk(upload_url(scripted), video, 0, 999, 1000, "video/mp4"))

    assert isinstance(error, upload.RangeMismatchError)
    assert (error.code, error.action, error.resume_offset) == ("range_mismatch", Action.RETRY, resume_offset)


def test_a_file_shorter_than_the_range_is_refused_before_sending(
        scripted: Scripted, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_file(video, 500)

    with pytest.raises(MediaError) as info:
        uploader.put_chunk(upload_url(scripted), video, 0, 999, 1000, "video/mp4")

    assert info.value.code == "file_changed"
    assert scripted.seen == []


def test_a_refused_connection_during_upload_is_a_network_error(
        uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_file(video, 10)
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]

    error = raised(lambda: uploader.put_chunk(f"http://127.0.0.1:{port}/u?t=1", video, 0, 9, 10, "video/mp4"))

    assert (error.code, error.action) == ("network_error", Action.RETRY)


@pytest.fixture
def tls_scripted(scripted: Scripted, tmp_path: Path) -> tuple[Scripted, ssl.SSLContext]:
    """The scripted server behind TLS, with a throwaway certificate that only this test trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed, so no test certificate can be made")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    scripted.socket = server_side.wrap_socket(scripted.socket, server_side=True)
    return scripted, ssl.create_default_context(cafile=str(cert))


def test_over_https_the_chunk_is_streamed_in_blocks_and_arrives_intact(
        tls_scripted: tuple[Scripted, ssl.SSLContext], tmp_path: Path) -> None:
    server, trust = tls_scripted
    video = tmp_path / "clip.mp4"
    write_file(video, 3 * sendbody.BLOCK + 12345)
    server.script(Answer(status=206, body=b""), Answer(status=201, body=b""))
    streamer = upload.ChunkUploader(timeout=5, ssl_context=trust)
    url = f"https://127.0.0.1:{server.server_address[1]}/video/?upload_id=1&upload_token=t"

    first = streamer.put_chunk(url, video, 0, 1_999_999, video.stat().st_size, "video/mp4")
    last = streamer.put_chunk(url, video, 2_000_000, video.stat().st_size - 1, video.stat().st_size, "video/mp4")
    streamer.close()

    data = video.read_bytes()
    assert (first.complete, last.complete) == (False, True)
    assert [seen.sha256 for seen in server.seen] == [hashlib.sha256(data[:2_000_000]).hexdigest(),
                                                     hashlib.sha256(data[2_000_000:]).hexdigest()]


def _server(scheme: str, request: pytest.FixtureRequest) -> tuple[Scripted, ssl.SSLContext | None]:
    if scheme == "https":
        server, trust = request.getfixturevalue("tls_scripted")
        return server, trust
    return request.getfixturevalue("scripted"), None


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("size", [1, sendbody.BLOCK - 1, sendbody.BLOCK, sendbody.BLOCK + 1, 2 * sendbody.BLOCK + 7])
def test_a_chunk_around_the_block_edges_arrives_intact_and_the_hash_is_given_exactly_the_bytes_sent(
        scheme: str, size: int, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server, trust = _server(scheme, request)
    video = tmp_path / "clip.mp4"
    data = random.Random(size).randbytes(size + 3000)   # no repeating pattern: a misplaced block shows
    video.write_bytes(data)
    first, last = 1000, 1000 + size - 1
    server.script(Answer(status=206, body=b"", headers={"Content-Range": f"bytes 0-{last}/{len(data)}"}))
    streamer = upload.ChunkUploader(timeout=5, ssl_context=trust)
    hasher = hashlib.sha256()
    url = f"{scheme}://127.0.0.1:{server.server_address[1]}/video/?upload_id=1&upload_token=t"

    ack = streamer.put_chunk(url, video, first, last, len(data), "video/mp4", hasher=hasher)
    streamer.close()

    sent = hashlib.sha256(data[first:last + 1]).hexdigest()
    assert ack.next_offset == last + 1
    assert (server.seen[0].length, server.seen[0].sha256, hasher.hexdigest()) == (size, sent, sent)


class _ShrinksAfterOneRead(io.BufferedReader):
    """An open file that another program cuts to ``keep`` bytes right after the first block is read."""

    keep = 0

    def readinto(self, buffer: Any, /) -> int:
        got = super().readinto(buffer)
        if self.keep:
            os.truncate(self.name, self.keep)   # by name: this descriptor is read-only
            self.keep = 0
        return got


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_file_cut_short_while_its_chunk_is_sent_is_file_changed_and_the_hash_saw_what_was_sent(
        scheme: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server, trust = _server(scheme, request)
    video = tmp_path / "clip.mp4"
    size = 3 * sendbody.BLOCK
    data = random.Random(7).randbytes(size)
    video.write_bytes(data)
    streamer = upload.ChunkUploader(timeout=5, ssl_context=trust)
    hasher = hashlib.sha256()
    url = f"{scheme}://127.0.0.1:{server.server_address[1]}/video/?upload_id=1&upload_token=t"

    with _ShrinksAfterOneRead(io.FileIO(video, "rb")) as file:
        file.keep = sendbody.BLOCK + 10
        with pytest.raises(MediaError) as info:
            streamer.put_chunk(url, file, 0, size - 1, size, "video/mp4", hasher=hasher)
    streamer.close()

    assert info.value.code == "file_changed"
    assert hasher.hexdigest() == hashlib.sha256(data[:sendbody.BLOCK + 10]).hexdigest()
    if scheme == "http":
        # Over TLS the connection is cut with the server's session tickets unread, which resets it and can
        # lose bytes in flight on the server's side: only plain HTTP shows the server what was sent.
        deadline = time.monotonic() + 5
        while not server.seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.seen[0].sha256 == hasher.hexdigest()   # the server got those bytes and no others


# --- against the emulator: the real protocol, judged by code the client does not share ----------

DIRECT_POST_INFO = {"privacy_level": "SELF_ONLY", "title": "a cat", "brand_content_toggle": False,
                    "brand_organic_toggle": False}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    # check_content off: these tests are about bytes and protocol, not whether the bytes are a video.
    with running_emulator(check_content=False) as emulator:
        yield emulator


@pytest.fixture
def live(emu: Emulator) -> Iterator[client.TikTokClient]:
    tiktok = client.TikTokClient(emu.base_url, timeout=5)
    yield tiktok
    tiktok.close()


def send_all(streamer: upload.ChunkUploader, url: str, video: Path, plan: chunks.ChunkPlan,
             start: int = 0) -> list[upload.ChunkAck]:
    """Send every chunk of ``plan`` from the one starting at byte ``start``."""
    return [streamer.put_chunk(url, video, first, last, plan.size, "video/mp4")
            for first, last in plan.ranges() if first >= start]


def test_a_12_mb_video_in_two_chunks_arrives_intact_and_lands_in_the_inbox(
        emu: Emulator, live: client.TikTokClient, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    token = emu.add_user("alice").access_token
    video = tmp_path / "clip.mp4"
    sha256 = write_file(video, 12_000_000)
    plan = chunks.plan(12_000_000, 6_000_000)

    init = live.init_inbox_video(token, plan=plan)
    assert init.upload_url is not None
    acks = send_all(uploader, init.upload_url, video, plan)

    assert acks == [upload.ChunkAck(6_000_000, False), upload.ChunkAck(12_000_000, True)]
    record = emu.records.publish(init.publish_id)
    assert (record.sha256, record.chunk_ranges) == (sha256, tuple(plan.ranges()))
    assert live.status(token, init.publish_id).status == "SEND_TO_USER_INBOX"


def test_a_1_mb_video_goes_in_one_chunk_and_is_posted_directly(
        emu: Emulator, live: client.TikTokClient, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    token = emu.add_user("bob").access_token
    video = tmp_path / "clip.mp4"
    sha256 = write_file(video, 1_000_000)
    plan = chunks.plan(1_000_000)

    init = live.init_direct_video(token, post_info=DIRECT_POST_INFO, plan=plan)
    assert init.upload_url is not None
    acks = send_all(uploader, init.upload_url, video, plan)

    assert acks == [upload.ChunkAck(1_000_000, True)]
    assert emu.records.publish(init.publish_id).sha256 == sha256
    status = live.status(token, init.publish_id)
    assert (status.status, status.fail_reason, status.uploaded_bytes) == ("PUBLISH_COMPLETE", None, 1_000_000)


def test_an_upload_resumes_from_the_acknowledged_offset_after_a_restart(
        emu: Emulator, live: client.TikTokClient, tmp_path: Path) -> None:
    token = emu.add_user("carol").access_token
    video = tmp_path / "clip.mp4"
    sha256 = write_file(video, 16_000_000)
    plan = chunks.plan(16_000_000, 5_300_000)
    init = live.init_inbox_video(token, plan=plan)
    assert init.upload_url is not None and plan.count == 3
    before_crash = upload.ChunkUploader(timeout=5)
    first, last = plan.ranges()[0]
    acknowledged = before_crash.put_chunk(init.upload_url, video, first, last, plan.size, "video/mp4").next_offset
    before_crash.close()

    after_restart = upload.ChunkUploader(timeout=5)
    acks = send_all(after_restart, init.upload_url, video, plan, start=acknowledged)
    after_restart.close()

    assert [ack.complete for ack in acks] == [False, True]
    assert emu.records.publish(init.publish_id).sha256 == sha256


def test_a_range_mismatch_tells_where_to_realign_and_the_upload_then_completes(
        emu: Emulator, live: client.TikTokClient, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    token = emu.add_user("dave").access_token
    video = tmp_path / "clip.mp4"
    sha256 = write_file(video, 12_000_000)
    plan = chunks.plan(12_000_000, 6_000_000)
    init = live.init_inbox_video(token, plan=plan)
    assert init.upload_url is not None
    (first, last), (second_first, second_last) = plan.ranges()

    skipped = raised(lambda: uploader.put_chunk(init.upload_url or "", video, second_first, second_last,
                                                plan.size, "video/mp4"))
    assert isinstance(skipped, upload.RangeMismatchError) and skipped.resume_offset == 0
    uploader.put_chunk(init.upload_url, video, first, last, plan.size, "video/mp4")
    repeated = raised(lambda: uploader.put_chunk(init.upload_url or "", video, first, last, plan.size,
                                                 "video/mp4"))
    assert isinstance(repeated, upload.RangeMismatchError)
    assert (repeated.action, repeated.resume_offset) == (Action.RETRY, 6_000_000)
    acks = send_all(uploader, init.upload_url, video, plan, start=repeated.resume_offset)

    assert acks == [upload.ChunkAck(12_000_000, True)]
    assert emu.records.publish(init.publish_id).sha256 == sha256


def test_an_expired_upload_url_asks_for_a_new_init(
        emu: Emulator, live: client.TikTokClient, uploader: upload.ChunkUploader, tmp_path: Path) -> None:
    token = emu.add_user("erin").access_token
    video = tmp_path / "clip.mp4"
    write_file(video, 1_000_000)
    init = live.init_inbox_video(token, plan=chunks.plan(1_000_000))
    assert init.upload_url is not None
    emu.expire_upload_url(init.publish_id)

    error = raised(lambda: uploader.put_chunk(init.upload_url or "", video, 0, 999_999, 1_000_000, "video/mp4"))

    assert (error.code, error.action, error.http_status) == ("upload_url_expired", Action.REINIT, 403)
    assert "upload_token" not in str(error)


@pytest.mark.parametrize(("kind", "code"), [("5xx", "internal_error"), ("drop", "network_error")])
def test_a_chunk_that_failed_in_transit_is_retried_and_then_accepted(
        emu: Emulator, live: client.TikTokClient, uploader: upload.ChunkUploader, tmp_path: Path, kind: str,
        code: str) -> None:
    token = emu.add_user("frank").access_token
    video = tmp_path / "clip.mp4"
    sha256 = write_file(video, 12_000_000)
    plan = chunks.plan(12_000_000, 6_000_000)
    init = live.init_inbox_video(token, plan=plan)
    assert init.upload_url is not None
    first, last = plan.ranges()[0]
    emu.faults.fail_next("upload", kind=kind)

    error = raised(lambda: uploader.put_chunk(init.upload_url or "", video, first, last, plan.size, "video/mp4"))
    acks = send_all(uploader, init.upload_url, video, plan)

    assert (error.code, error.action) == (code, Action.RETRY)
    assert [ack.complete for ack in acks] == [False, True]
    assert emu.records.publish(init.publish_id).sha256 == sha256


@pytest.mark.parametrize("size", [1, 4_194_304, 5 * 1024 * 1024, 50_000_123, 64_000_001, 200_000_000,
                                  4_000_000_000])
def test_every_chunk_plan_is_accepted_by_the_emulators_own_chunk_rules(
        emu: Emulator, live: client.TikTokClient, size: int) -> None:
    token = emu.add_user(f"size{size}").access_token

    init = live.init_inbox_video(token, plan=chunks.plan(size))

    record = emu.records.publish(init.publish_id)
    assert (record.declared_size, record.chunk_size, record.total_chunk_count) == (
        size, chunks.plan(size).chunk_size, chunks.plan(size).count)


def test_each_init_variant_is_accepted_in_the_shape_tiktok_documents() -> None:
    prefix = "http://127.0.0.1:9/tiktok/"  # verified, never fetched successfully: only the init is judged
    with running_emulator(check_content=False, verified_url_prefixes=[prefix]) as emulator:
        tiktok = client.TikTokClient(emulator.base_url, timeout=5)
        token = emulator.add_user("gina").access_token
        inits = [
            tiktok.init_inbox_video(token, plan=chunks.plan(10)),
            tiktok.init_inbox_video(token, video_url=prefix + "a.mp4"),
            tiktok.init_direct_video(token, post_info=DIRECT_POST_INFO, plan=chunks.plan(10)),
            tiktok.init_direct_video(token, post_info=DIRECT_POST_INFO, video_url=prefix + "b.mp4"),
            tiktok.init_photos(token, post_mode="MEDIA_UPLOAD", post_info={"title": "trip"},
                               photo_urls=[prefix + "1.jpg", prefix + "2.jpg"], cover_index=1),
            tiktok.init_photos(token, post_mode="DIRECT_POST", post_info={"privacy_level": "SELF_ONLY"},
                               photo_urls=[prefix + "3.jpg"], cover_index=0),
        ]
        records = [emulator.records.publish(init.publish_id) for init in inits]
        tiktok.close()

    assert [(record.kind, record.mode, record.source) for record in records] == [
        ("video", "inbox", "FILE_UPLOAD"), ("video", "inbox", "PULL_FROM_URL"),
        ("video", "direct", "FILE_UPLOAD"), ("video", "direct", "PULL_FROM_URL"),
        ("photo", "inbox", "PULL_FROM_URL"), ("photo", "direct", "PULL_FROM_URL")]
    assert [init.upload_url is not None for init in inits] == [True, False, True, False, False, False]
    assert records[1].video_url == prefix + "a.mp4"
    assert (records[4].photo_urls, records[4].photo_cover_index) == ((prefix + "1.jpg", prefix + "2.jpg"), 1)
    assert records[2].post_info["privacy_level"] == "SELF_ONLY"


PHOTO_URL = "http://127.0.0.1:9/tiktok/1.jpg"
CALLS: dict[str, Callable[[client.TikTokClient, str], object]] = {
    "creator_info": lambda api, token: api.creator_info(token),
    "video_init": lambda api, token: api.init_direct_video(token, post_info=DIRECT_POST_INFO, plan=chunks.plan(10)),
    "inbox_init": lambda api, token: api.init_inbox_video(token, plan=chunks.plan(10)),
    "content_init": lambda api, token: api.init_photos(token, post_mode="DIRECT_POST", post_info=DIRECT_POST_INFO,
                                                       photo_urls=[PHOTO_URL], cover_index=0),
    "status": lambda api, token: api.status(token, "v_inbox_file~v2.0"),
    "cancel": lambda api, token: api.cancel(token, "v_pub_url~v2.0"),
}
ENVELOPE_CASES = [(endpoint, code) for endpoint in CALLS for code in sorted(CODES_OF_ENDPOINT[endpoint])]


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[Emulator]:
    """One emulator for the many one-call cases below; each case signs up its own user, so no case
    shares a rate-limit window with another."""
    with running_emulator(check_content=False) as emulator:
        yield emulator


@pytest.mark.parametrize(("endpoint", "code"), ENVELOPE_CASES, ids=[f"{e}-{c}" for e, c in ENVELOPE_CASES])
def test_every_error_an_endpoint_can_answer_raises_its_policy_action(shared_emu: Emulator, endpoint: str,
                                                                     code: str) -> None:
    token = shared_emu.add_user(f"{endpoint}-{code}").access_token
    shared_emu.faults.fail_next(endpoint, error_code=code)
    tiktok = client.TikTokClient(shared_emu.base_url, timeout=5)

    error = raised(lambda: CALLS[endpoint](tiktok, token))
    tiktok.close()

    assert code in codes.POLICY, "every code TikTok can send has a decided policy"
    assert (error.code, error.action, error.http_status) == (code, codes.POLICY[code].action,
                                                             status_for(endpoint, code))
    assert error.log_id and error.advice == codes.POLICY[code].advice


TRANSIT_CASES = [(endpoint, kind) for endpoint in CALLS for kind in ("429", "5xx", "drop")] + [("status", "slow")]


@pytest.mark.parametrize(("endpoint", "kind"), TRANSIT_CASES, ids=[f"{e}-{k}" for e, k in TRANSIT_CASES])
def test_a_throttled_failed_or_lost_call_is_retried(shared_emu: Emulator, endpoint: str, kind: str) -> None:
    token = shared_emu.add_user(f"{endpoint}-{kind}").access_token
    shared_emu.faults.fail_next(endpoint, kind=kind, delay=1.0)
    tiktok = client.TikTokClient(shared_emu.base_url, timeout=0.3)

    error = raised(lambda: CALLS[endpoint](tiktok, token))
    tiktok.close()

    expected = {"429": "rate_limit_exceeded", "5xx": "internal_error", "drop": "network_error",
                "slow": "network_error"}[kind]
    assert (error.code, error.action) == (expected, Action.RETRY)


def test_the_tiktok_package_shares_no_code_with_the_emulator_that_judges_it() -> None:
    """A bug shared by client and emulator (a chunk-plan slip, say) would pass every test above."""
    for module in sorted(Path(client.__file__).parent.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert [name for name in imported if "emulator" in name] == [], module.name
