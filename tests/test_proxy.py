"""Chunk uploads honour the same proxy and CA settings as the JSON calls: a CONNECT proxy started here."""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator

import certifi
import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig
from watchfolder.emulator.clock import OffsetClock
from watchfolder.media import samples
from watchfolder.tiktok import transport
from watchfolder.tiktok.upload import ChunkUploader


class ConnectProxy(socketserver.ThreadingTCPServer):
    """A minimal HTTP proxy that only tunnels (CONNECT host:port), recording each target and the bytes sent."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.targets: list[str] = []
        self.auth: list[str | None] = []
        self.bytes_up = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Tunnel(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            got = self.request.recv(4096)
            if not got:
                return
            head += got
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        auth = next((line.split(":", 1)[1].strip() for line in lines[1:]
                     if line.lower().startswith("proxy-authorization:")), None)
        with self.server.lock:
            self.server.targets.append(f"{method} {target}")
            self.server.auth.append(auth)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            upstream.sendall(rest)
        pair = {self.request: upstream, upstream: self.request}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    pair[sock].sendall(data)
                    if sock is self.request:
                        with self.server.lock:
                            self.server.bytes_up += len(data)
        finally:
            upstream.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    server = ConnectProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_daemon_upload_goes_through_the_proxy_and_json_calls_follow_no_proxy(proxy, tmp_path, monkeypatch):
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False) as emu:
        emu.config.upload_base_url = emu.base_url  # chunks go to 127.0.0.1, the JSON calls to localhost
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")
        rig = Rig(tmp_path / "rig", emu, overrides={"tiktok.api_base_url": emu.base_url.replace("127.0.0.1",
                                                                                                  "localhost")})
        try:
            rig.start()
            samples.write_mp4(tmp_path / "clip.mp4", size=600_000)
            rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
            assert rig.wait_sidecar("alice", "clip.mp4")["result"] == "done"
        finally:
            rig.stop()
    port = emu.base_url.rsplit(":", 1)[1]
    assert proxy.targets and set(proxy.targets) == {f"CONNECT 127.0.0.1:{port}"}, proxy.targets
    assert proxy.bytes_up >= 600_000  # the whole file went through the tunnel


def test_no_proxy_sends_the_chunks_direct_and_a_proxy_user_is_sent_as_proxy_authorization(proxy, tmp_path):
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False) as emu:
        samples.write_mp4(tmp_path / "clip.mp4", size=100_000)
        env = {"http_proxy": proxy.url.replace("http://", "http://me:p%40ss@"), "no_proxy": "example.com"}
        direct = {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}
        for environment in (env, direct):
            uploader = ChunkUploader(timeout=10, env=environment)
            try:
                # An unknown upload id: the emulator answers 404, which proves the request arrived.
                with pytest.raises(Exception, match="HTTP 404"):
                    uploader.put_chunk(f"{emu.base_url}/video/?upload_id=nope&upload_token=t", tmp_path / "clip.mp4",
                                       0, 99_999, 100_000, "video/mp4")
            finally:
                uploader.close()
    assert len(proxy.targets) == 1, "NO_PROXY=127.0.0.1 sent the second upload direct"
    assert proxy.auth == ["Basic bWU6cEBzcw=="]  # me:p@ss


def test_a_proxy_that_refuses_is_a_network_error_naming_the_proxy_not_the_url(proxy, tmp_path):
    samples.write_mp4(tmp_path / "clip.mp4", size=10_000)
    uploader = ChunkUploader(timeout=5, env={"HTTPS_PROXY": "http://127.0.0.1:9"})  # nothing listens on 9
    with pytest.raises(Exception) as caught:
        uploader.put_chunk("https://upload.example.com/video/?upload_token=secret-token", tmp_path / "clip.mp4",
                           0, 9_999, 10_000, "video/mp4")
    assert getattr(caught.value, "code", None) == "network_error"
    assert "secret-token" not in str(caught.value)


def test_proxy_selection_follows_scheme_all_proxy_and_no_proxy():
    assert transport.proxy_for("https://open-upload.tiktokapis.com/x", {"HTTPS_PROXY": "proxy:3128"}) == \
        transport.Proxy("proxy", 3128)
    assert transport.proxy_for("https://a.example/x", {"HTTP_PROXY": "http://p:1"}) is None
    assert transport.proxy_for("http://a.example/x", {"ALL_PROXY": "http://p:1"}) == transport.Proxy("p", 1)
    for no_proxy in ("*", "example.com", ".example.com", "up.example.com"):
        assert transport.proxy_for("https://up.example.com/x", {"https_proxy": "http://p:1",
                                                                "no_proxy": no_proxy}) is None
    assert transport.proxy_for("https://up.example.com/x", {"https_proxy": "http://p:1", "no_proxy": "other.org"})


def test_the_ca_bundle_comes_from_the_same_variables_as_for_requests(tmp_path):
    first = certifi.contents().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text(first[first.index("-----BEGIN"):])
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        assert transport.ca_bundle({name: str(bundle)}) == str(bundle)
        context = transport.ssl_context({name: str(bundle)})
        assert context.verify_mode == ssl.CERT_REQUIRED and len(context.get_ca_certs()) == 1
    assert transport.ca_bundle({"REQUESTS_CA_BUNDLE": "a", "SSL_CERT_FILE": "b"}) == "a"
    assert transport.session({"SSL_CERT_FILE": str(bundle)}).verify == str(bundle)
    assert transport.session({"REQUESTS_CA_BUNDLE": str(bundle)}).verify is True  # requests reads that one itself
