"""The media host: staging under unguessable names, the built-in server, publish_dir, expiry and the probe."""

from __future__ import annotations

import functools
import http.client
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from watchfolder.media import samples
from watchfolder.mediahost.host import INDEX_NAME, MediaHost

NOW = 1_800_000_000.0
WINDOW = 4200.0


@pytest.fixture
def host(tmp_path: Path) -> Iterator[MediaHost]:
    media_host = MediaHost(url_prefix="https://media.example.com/tiktok/", staging_dir=tmp_path / "staging",
                           serve=("127.0.0.1", 0), pull_window_seconds=WINDOW)
    media_host.start()
    yield media_host
    media_host.stop()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = samples.write_jpeg(tmp_path / "Holiday.JPG", 200, 100, seed=7)
    path.chmod(0o600)
    return path


def _url(host: MediaHost, name: str) -> str:
    return f"http://127.0.0.1:{host.bound_port}/tiktok/{name}"


def _raw(host: MediaHost, method: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send the request target exactly as given (http.client does not normalise it)."""
    connection = http.client.HTTPConnection("127.0.0.1", host.bound_port, timeout=5)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- staging ------------------------------------------------------------------------------


def test_stage_gives_an_unguessable_name_and_the_url_under_the_prefix(host: MediaHost, photo: Path) -> None:
    """32 URL-safe characters (192 random bits) plus the lower-cased extension, under url_prefix."""
    staged = host.stage(photo, now=NOW)

    token, extension = staged.name.split(".")
    assert len(token) == 32 and extension == "jpg"
    assert staged.url == "https://media.example.com/tiktok/" + staged.name
    assert staged.expires_at == NOW + WINDOW
    assert staged.path.read_bytes() == photo.read_bytes()


def test_staged_copy_is_world_readable_and_the_source_mode_is_untouched(host: MediaHost, photo: Path) -> None:
    """A private (0600) source is copied with mode 0644; the user's file keeps its mode."""
    staged = host.stage(photo, now=NOW)

    assert staged.path.stat().st_mode & 0o777 == 0o644
    assert photo.stat().st_mode & 0o777 == 0o600
    assert not os.path.samefile(staged.path, photo)


def test_readable_source_on_the_same_filesystem_is_hard_linked(host: MediaHost, photo: Path) -> None:
    """No copy when a hard link does the job without changing anything about the source."""
    photo.chmod(0o644)

    staged = host.stage(photo, now=NOW)

    assert os.path.samefile(staged.path, photo)


def test_staging_the_same_file_twice_gives_two_names(host: MediaHost, photo: Path) -> None:
    """Nothing is ever overwritten: each stage is a new name."""
    first, second = host.stage(photo, now=NOW), host.stage(photo, now=NOW)

    assert first.name != second.name
    assert first.path.exists() and second.path.exists()


def test_suffix_overrides_the_extension(host: MediaHost, photo: Path) -> None:
    """A converted photo can be staged under the extension of what it now is."""
    assert host.stage(photo, now=NOW, suffix=".webp").name.endswith(".webp")
    with pytest.raises(ValueError, match="extension"):
        host.stage(photo, now=NOW, suffix="/../x")


def test_release_removes_the_staged_files(host: MediaHost, photo: Path) -> None:
    """After TikTok's final status the staged copies go, and the server answers 404."""
    staged = [host.stage(photo, now=NOW) for _ in range(2)]

    host.release([s.name for s in staged] + ["../Holiday.JPG"])

    assert [s.path.exists() for s in staged] == [False, False]
    assert photo.exists()
    assert requests.get(_url(host, staged[0].name), timeout=5).status_code == 404


def test_sweep_removes_only_files_past_their_pull_window(host: MediaHost, photo: Path) -> None:
    """Files staged longer ago than the window go; newer ones stay; the count is returned."""
    old = host.stage(photo, now=NOW)
    new = host.stage(photo, now=NOW + 1000)

    assert host.sweep(NOW + WINDOW - 1) == 0
    assert host.sweep(NOW + WINDOW) == 1
    assert (old.path.exists(), new.path.exists()) == (False, True)


def test_expiry_survives_a_restart(tmp_path: Path, photo: Path) -> None:
    """The staging dir is persistent: a new MediaHost on it sweeps what an old one staged."""
    first = MediaHost(url_prefix="https://m.example.com/", staging_dir=tmp_path / "s", serve=("127.0.0.1", 0))
    staged = first.stage(photo, now=NOW)

    second = MediaHost(url_prefix="https://m.example.com/", staging_dir=tmp_path / "s", serve=("127.0.0.1", 0))

    assert second.sweep(NOW + 1) == 0
    assert second.sweep(NOW + 3600 + 600) == 1
    assert not staged.path.exists()


def test_sweep_removes_unindexed_staged_files_by_mtime(host: MediaHost) -> None:
    """A staged-looking file the index does not know (a lost index) expires by its mtime."""
    stray = host.staging_dir / ("A" * 32 + ".jpg")
    stray.write_bytes(b"x")
    os.utime(stray, (NOW - WINDOW - 1, NOW - WINDOW - 1))
    keep = host.staging_dir / "notes.txt"
    keep.write_bytes(b"x")
    os.utime(keep, (0, 0))

    assert host.sweep(NOW) == 1
    assert not stray.exists() and keep.exists()


# --- the built-in server ------------------------------------------------------------------


def test_staged_file_is_served_with_exact_bytes_and_headers(host: MediaHost, photo: Path) -> None:
    """GET returns the bytes, their length and the type by extension, with no redirect."""
    staged = host.stage(photo, now=NOW)

    response = requests.get(_url(host, staged.name), timeout=5, allow_redirects=False)

    assert response.status_code == 200
    assert response.content == photo.read_bytes()
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Length"] == str(photo.stat().st_size)
    assert response.headers["Accept-Ranges"] == "bytes"


def test_a_multi_mebibyte_file_streams_whole(host: MediaHost, tmp_path: Path) -> None:
    """Big staged videos (pull_from_url) arrive byte for byte."""
    video = samples.write_mp4(tmp_path / "clip.mp4", size=3 * 1024 * 1024 + 17)

    response = requests.get(_url(host, host.stage(video, now=NOW).name), timeout=10)

    assert response.headers["Content-Type"] == "video/mp4"
    assert response.content == video.read_bytes()


def test_head_gives_the_headers_without_a_body(host: MediaHost, photo: Path) -> None:
    """HEAD answers like GET, minus the body."""
    staged = host.stage(photo, now=NOW)

    response = requests.head(_url(host, staged.name), timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(photo.stat().st_size)
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=100-199", 100, 199), ("bytes=-50", 950, 999), ("bytes=900-", 900, 999),
     ("bytes=990-5000", 990, 999), ("bytes=-5000", 0, 999)],
)
def test_single_ranges_get_206_with_content_range(host: MediaHost, tmp_path: Path, header: str, first: int,
                                                  last: int) -> None:
    """First bytes, a middle span, a suffix, an open end, and ends past the file (clamped)."""
    source = tmp_path / "blob.webp"
    source.write_bytes(bytes(i % 251 for i in range(1000)))
    staged = host.stage(source, now=NOW)

    response = requests.get(_url(host, staged.name), headers={"Range": header}, timeout=5)

    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/1000"
    assert response.content == source.read_bytes()[first:last + 1]


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_gets_416(host: MediaHost, tmp_path: Path, header: str) -> None:
    """A range starting past the end is 416 with the size in Content-Range."""
    source = tmp_path / "blob.jpg"
    source.write_bytes(bytes(1000))
    staged = host.stage(source, now=NOW)

    response = requests.get(_url(host, staged.name), headers={"Range": header}, timeout=5)

    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */1000"


def test_malformed_or_multiple_ranges_get_the_whole_file(host: MediaHost, photo: Path) -> None:
    """A Range header we don't serve is ignored, as HTTP allows: 200 and every byte."""
    staged = host.stage(photo, now=NOW)

    for header in ("bytes=0-1,5-6", "bytes=9-3", "lines=1-2"):
        response = requests.get(_url(host, staged.name), headers={"Range": header}, timeout=5)
        assert (response.status_code, response.content) == (200, photo.read_bytes())


@pytest.mark.parametrize(
    "target",
    ["/tiktok/" + "B" * 32 + ".jpg", f"/tiktok/{INDEX_NAME}", "/tiktok/", "/tiktok", "/", "/etc/passwd",
     "/tiktok/../tiktok/{name}", "/tiktok/%2e%2e/{name}", "/tiktok/..%2f..%2fetc%2fpasswd", "/tiktok//{name}",
     "/tiktok/{name}/", "/tiktok/%2F{name}", "/other/{name}", "{name}", "http://127.0.0.1/tiktok/../{name}"],
)
def test_anything_but_a_staged_name_under_the_prefix_is_404(host: MediaHost, photo: Path, target: str) -> None:
    """Unknown names, the index, traversal (plain or encoded), absolute paths: 404, never a listing."""
    staged = host.stage(photo, now=NOW)

    status, body = _raw(host, "GET", target.format(name=staged.name))

    assert status == 404
    assert photo.read_bytes()[:16] not in body


def test_a_symlink_in_the_staging_dir_is_not_followed(host: MediaHost, tmp_path: Path) -> None:
    """Even with a staged-looking name, a link out of the staging dir is 404."""
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"private")
    name = "C" * 32 + ".jpg"
    (host.staging_dir / name).symlink_to(secret)

    assert _raw(host, "GET", f"/tiktok/{name}")[0] == 404


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "OPTIONS", "PROPFIND"])
def test_methods_other_than_get_and_head_get_405(host: MediaHost, photo: Path, method: str) -> None:
    """The server only reads; any other method is refused with Allow: GET, HEAD."""
    staged = host.stage(photo, now=NOW)

    response = requests.request(method, _url(host, staged.name), data=b"new bytes", timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert staged.path.read_bytes() == photo.read_bytes()


def test_keep_alive_connection_serves_several_requests(host: MediaHost, photo: Path) -> None:
    """HTTP/1.1 with exact lengths: a proxy can reuse one connection for several fetches."""
    staged = host.stage(photo, now=NOW)
    connection = http.client.HTTPConnection("127.0.0.1", host.bound_port, timeout=5)
    try:
        for target in (f"/tiktok/{staged.name}", "/tiktok/missing", f"/tiktok/{staged.name}"):
            connection.request("GET", target)
            response = connection.getresponse()
            response.read()
        assert response.status == 200
    finally:
        connection.close()


def test_requests_leave_no_log_lines_on_stderr(host: MediaHost, photo: Path, capfd: pytest.CaptureFixture) -> None:
    """No per-request stderr spam, not even for errors."""
    staged = host.stage(photo, now=NOW)
    requests.get(_url(host, staged.name), timeout=5)
    requests.get(_url(host, "nothing"), timeout=5)
    requests.put(_url(host, staged.name), timeout=5)

    assert capfd.readouterr().err == ""


def test_stop_closes_the_port(tmp_path: Path) -> None:
    """After stop nothing listens any more, and stop twice is harmless."""
    media_host = MediaHost(url_prefix="https://m.example.com/", staging_dir=tmp_path, serve=("127.0.0.1", 0))
    media_host.start()
    port = media_host.bound_port
    media_host.stop()
    media_host.stop()

    assert media_host.bound_port is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)


# --- publish_dir --------------------------------------------------------------------------


def test_publish_dir_mode_copies_into_the_folder_and_removes_on_release(tmp_path: Path, photo: Path) -> None:
    """With publish_dir, staged files land there (0644) and release and sweep take them out again."""
    publish = tmp_path / "www"
    publish.mkdir()
    foreign = publish / ("d41d8cd98f00b204e9800998ecf8427e" + ".jpg")  # someone's hashed asset name
    foreign.write_bytes(b"not ours")
    os.utime(foreign, (0, 0))
    media_host = MediaHost(url_prefix="https://m.example.com/p/", staging_dir=tmp_path / "staging",
                           publish_dir=publish, pull_window_seconds=WINDOW)
    media_host.start()  # a no-op: an existing web server serves publish_dir

    kept, released = media_host.stage(photo, now=NOW), media_host.stage(photo, now=NOW)
    assert kept.path.parent == publish and kept.path.read_bytes() == photo.read_bytes()
    assert kept.path.stat().st_mode & 0o777 == 0o644
    assert media_host.bound_port is None

    media_host.release([released.name])
    assert not released.path.exists()
    assert media_host.sweep(NOW + WINDOW) == 1
    assert not kept.path.exists()
    assert foreign.exists()


def test_host_needs_exactly_one_way_to_publish(tmp_path: Path) -> None:
    """serve and publish_dir are alternatives; the prefix must end with '/'."""
    with pytest.raises(ValueError, match="exactly one"):
        MediaHost(url_prefix="https://m.example.com/", staging_dir=tmp_path)
    with pytest.raises(ValueError, match="end with '/'"):
        MediaHost(url_prefix="https://m.example.com/x", staging_dir=tmp_path, serve=("127.0.0.1", 0))


# --- probe --------------------------------------------------------------------------------


def test_probe_succeeds_against_the_built_in_server(tmp_path: Path) -> None:
    """The probe fetches its file through url_prefix and finds the same bytes, then removes it."""
    port = _free_port()
    media_host = MediaHost(url_prefix=f"http://127.0.0.1:{port}/tiktok/", staging_dir=tmp_path,
                           serve=("127.0.0.1", port))
    media_host.start()
    try:
        ok, explanation = media_host.probe(timeout=5)
    finally:
        media_host.stop()

    assert ok, explanation
    assert "https" in explanation  # the caveat: production needs https on a verified domain
    assert [p.name for p in tmp_path.iterdir() if p.name != INDEX_NAME] == []


def test_probe_fails_when_nothing_listens(tmp_path: Path) -> None:
    """A url_prefix that reaches nothing is reported, not raised."""
    media_host = MediaHost(url_prefix=f"http://127.0.0.1:{_free_port()}/tiktok/", staging_dir=tmp_path,
                           serve=("127.0.0.1", 0))

    ok, explanation = media_host.probe(timeout=5)

    assert not ok
    assert "nothing answered" in explanation


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An existing web server (the stdlib one) serving a folder, as publish_dir users have."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def list_directory(self, path: str) -> None:  # a web server set up as the docs ask: no listing
            self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_probe_succeeds_through_an_existing_web_server(tmp_path: Path, web_server: tuple[Path, int]) -> None:
    """publish_dir mode: the probe file is found through the other server, then removed."""
    root, port = web_server
    media_host = MediaHost(url_prefix=f"http://127.0.0.1:{port}/", staging_dir=tmp_path / "s", publish_dir=root)

    ok, explanation = media_host.probe(timeout=5)

    assert ok, explanation
    assert list(root.iterdir()) == []


def test_probe_fails_when_the_prefix_serves_another_folder(tmp_path: Path, web_server: tuple[Path, int]) -> None:
    """A prefix whose path is not the folder we write to answers 404: the probe says so."""
    root, port = web_server
    media_host = MediaHost(url_prefix=f"http://127.0.0.1:{port}/elsewhere/", staging_dir=tmp_path / "s",
                           publish_dir=root)

    ok, explanation = media_host.probe(timeout=5)

    assert not ok
    assert "HTTP 404" in explanation


def test_probe_fails_when_the_web_server_lists_the_folder(tmp_path: Path) -> None:
    """A listing would give away every staged name, so the probe fails and says why."""
    root = tmp_path / "www"
    root.mkdir()

    class Listing(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Listing, directory=str(root)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        media_host = MediaHost(url_prefix=f"http://127.0.0.1:{server.server_address[1]}/",
                               staging_dir=tmp_path / "s", publish_dir=root)
        ok, explanation = media_host.probe(timeout=5)
    finally:
        server.shutdown()
        server.server_close()

    assert not ok
    assert "lists the folder" in explanation
    assert list(root.iterdir()) == []


def test_publish_dir_may_not_be_the_staging_dir(tmp_path: Path) -> None:
    """The index of staged names must never be inside a folder a web server hands out."""
    with pytest.raises(ValueError, match="must not be the staging folder"):
        MediaHost(url_prefix="https://m.example.com/", staging_dir=tmp_path, publish_dir=tmp_path)


def test_probe_fails_on_a_redirect(tmp_path: Path) -> None:
    """TikTok does not follow redirects, so a proxy that redirects (say http → https) fails the probe."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", "https://media.example.com" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        media_host = MediaHost(url_prefix=f"http://127.0.0.1:{server.server_address[1]}/t/",
                               staging_dir=tmp_path, serve=("127.0.0.1", 0))
        ok, explanation = media_host.probe(timeout=5)
    finally:
        server.shutdown()
        server.server_close()

    assert not ok
    assert "301" in explanation and "redirect" in explanation
