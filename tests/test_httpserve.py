"""The daemon's two HTTP servers under attack: slow and half-sent connections, huge headers and ranges,
clients that never read. Each test runs the real server (the media host's ``FileServer``, or the
``/healthz`` + ``/metrics`` server) on a real socket and checks what a client sees and that the server
keeps serving."""

from __future__ import annotations

import dataclasses
import functools
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness import wait_for
from watchfolder.httpserve.handler import BoundedHandler
from watchfolder.httpserve.limits import Limits
from watchfolder.httpserve.server import BoundedServer
from watchfolder.mediahost.server import LIMITS, FileServer
from watchfolder.ops import metrics

NAME = "A" * 32 + ".jpg"
BODY = bytes(range(256)) * 40  # 10 KiB


def start(folder: Path, **limits: float) -> Iterator[FileServer]:
    server = FileServer(("127.0.0.1", 0), folder, "/tiktok/", dataclasses.replace(LIMITS, **limits))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / NAME).write_bytes(BODY)
    return tmp_path


@pytest.fixture
def server(files: Path) -> Iterator[FileServer]:
    yield from start(files, header_seconds=1.0)


def url(server: FileServer, name: str = NAME) -> str:
    return f"http://127.0.0.1:{server.bound_port}/tiktok/{name}"


def connect(server: FileServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.bound_port or 0), timeout=10)


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def assert_still_serving(server: FileServer) -> None:
    response = requests.get(url(server), timeout=5)
    assert response.status_code == 200
    assert response.content == BODY


def test_300_half_sent_requests_hold_no_threads_and_a_prompt_request_is_answered(files: Path) -> None:
    """Slow clients wait in the selector, not in threads; when connections run out the oldest waiter goes."""
    for server in start(files, workers=4, max_connections=64, header_seconds=30):
        assert_still_serving(server)  # the first worker exists
        before = threading.active_count()
        slow = []
        try:
            for _ in range(300):
                sock = connect(server)
                sock.sendall(f"GET /tiktok/{NAME} HTTP/1.1\r\nHost: x\r\n".encode())  # never finished
                slow.append(sock)
            time.sleep(0.5)
            assert threading.active_count() <= before + 3  # at most the other workers, never one per client
            for _ in range(3):
                assert_still_serving(server)
            assert threading.active_count() <= before + 3
        finally:
            for sock in slow:
                sock.close()


def test_a_slowloris_client_is_cut_off_at_the_header_deadline(server: FileServer) -> None:
    """One header byte every 0.2 s: the request never completes within 1 s, so 408 and the connection closes."""
    sock = connect(server)
    started = time.monotonic()
    for byte in f"GET /tiktok/{NAME} HTTP/1.1\r\nHost: x\r\nX-Slow: {'a' * 100}".encode():
        sock.sendall(bytes([byte]))
        if select.select([sock], [], [], 0.2)[0]:
            break  # the server answered
    elapsed = time.monotonic() - started
    answer = read_answer(sock)
    sock.close()
    assert elapsed < 3, f"the request was still being received after {elapsed:.1f} s with a 1 s deadline"
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert_still_serving(server)


def test_an_idle_keep_alive_connection_is_closed_after_the_deadline(server: FileServer) -> None:
    sock = connect(server)
    sock.sendall(f"GET /tiktok/{NAME} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    started = time.monotonic()
    answer = read_answer(sock)  # the answer, then (after 1 s idle) the close
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(BODY)
    assert 0.5 < time.monotonic() - started < 4


@pytest.mark.parametrize("digits", [19, 4300, 12000])
def test_a_range_with_thousands_of_digits_is_ignored(server: FileServer, digits: int) -> None:
    for header in (f"bytes={'9' * digits}-", f"bytes=0-{'9' * digits}", f"bytes=-{'1' * digits}"):
        response = requests.get(url(server), headers={"Range": header}, timeout=5)
        assert response.status_code == 200
        assert response.content == BODY
    assert_still_serving(server)


@pytest.mark.parametrize("headers, code", [
    ({"X-Big": "a" * 100_000}, 431),                       # one huge field
    ({f"X-{i}": "a" for i in range(200)}, 431),            # too many fields
])
def test_oversized_headers_get_431_and_the_server_keeps_serving(server: FileServer, headers: dict[str, str],
                                                                 code: int) -> None:
    response = requests.get(url(server), headers=headers, timeout=5)
    assert response.status_code == code
    assert response.content != BODY
    assert_still_serving(server)


def test_a_huge_request_line_gets_414(server: FileServer) -> None:
    response = requests.get(url(server, "x" * 50_000), timeout=5)
    assert response.status_code == 414
    assert_still_serving(server)


@pytest.mark.parametrize("head, code", [
    (b"GET /tiktok/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
    (b"GET /tiktok/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST /tiktok/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n", 413),
    (b"POST /tiktok/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    (b"GET /tiktok/x HTTP/1.1\r\nHost: x\r\n Content-Length: 5\r\n\r\n", 400),    # a folded line
    (b"GET /tiktok/x HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n", 400),   # space before the colon
    (b"GET /tiktok/x HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /tiktok/x HTTP/9.9\r\n\r\n", 505),
])
def test_malformed_requests_get_a_clean_error(server: FileServer, head: bytes, code: int) -> None:
    sock = connect(server)
    sock.sendall(head)
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith((f"HTTP/1.1 {code} ".encode(), f"HTTP/1.0 {code} ".encode()))
    assert_still_serving(server)


def test_pipelined_requests_on_one_connection_are_each_answered(server: FileServer) -> None:
    sock = connect(server)
    request = f"GET /tiktok/{NAME} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    sock.sendall(request * 2 + f"GET /tiktok/{NAME} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = read_answer(sock)
    sock.close()
    assert answer.count(b"HTTP/1.1 200 ") == 3
    assert answer.count(BODY) == 3


def test_a_client_that_never_reads_is_cut_off_and_frees_its_worker(tmp_path: Path) -> None:
    """A big file to a client that reads nothing: after io_seconds without progress the worker moves on."""
    big = "B" * 32 + ".mp4"
    with open(tmp_path / big, "wb") as f:
        f.truncate(256 * 1024 * 1024)  # sparse: costs no disk
    for server in start(tmp_path, workers=1, io_seconds=1.0, request_seconds=60):
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", server.bound_port or 0))
        stuck.sendall(f"GET /tiktok/{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        started = time.monotonic()
        (tmp_path / NAME).write_bytes(BODY)
        wait_for(functools.partial(_answers, server), 10, what="the only worker free again")
        assert time.monotonic() - started < 8
        stuck.close()


def test_the_whole_answer_has_a_deadline_even_for_a_client_that_reads_slowly(tmp_path: Path) -> None:
    big = "C" * 32 + ".mp4"
    with open(tmp_path / big, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    for server in start(tmp_path, workers=1, io_seconds=5.0, request_seconds=1.5):
        sock = connect(server)
        sock.sendall(f"GET /tiktok/{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        started, received = time.monotonic(), 0
        try:
            while chunk := sock.recv(1024):  # a trickle: progress, but far too slow for 64 MiB
                received += len(chunk)
                time.sleep(0.01)
        except OSError:
            pass
        sock.close()
        assert time.monotonic() - started < 8
        assert received < 64 * 1024 * 1024


def test_a_file_must_go_at_the_minimum_rate_or_its_reader_is_cut_off(tmp_path: Path) -> None:
    """A trickle reader of a file that needs 2 s at the floor rate is cut off then, not at the hour."""
    big = "E" * 32 + ".mp4"
    with open(tmp_path / big, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    for server in start(tmp_path, workers=1, io_seconds=60.0, request_seconds=3600,
                        min_rate=32 * 1024 * 1024, rate_grace_seconds=0.5):
        sock = connect(server)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET /tiktok/{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        started, cut_off = time.monotonic(), False
        while time.monotonic() - started < 10 and not cut_off:
            try:
                cut_off = not sock.recv(1024)  # a trickle: about 100 KB/s
            except OSError:
                cut_off = True
            time.sleep(0.01)
        sock.close()
        assert cut_off, "still sending after 10 s to a reader far below the floor rate"
        (tmp_path / NAME).write_bytes(BODY)
        assert_still_serving(server)  # the only worker is free again


def _answers(server: FileServer) -> bool:
    try:
        return requests.get(url(server), timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


class _Broken(BoundedHandler):
    def do_GET(self) -> None:  # the name http.server calls
        if self.path == "/bug":
            raise RuntimeError("a bug in one handler")
        body = b"fine\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # http.server's name
        return None


def test_a_handler_bug_is_a_500_for_that_request_only() -> None:
    errors: list[BaseException] = []

    class Server(BoundedServer):
        def handle_error(self, address: object, exc: BaseException) -> None:
            errors.append(exc)

    server = Server(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert requests.get(base + "/bug", timeout=5).status_code == 500
        assert [str(e) for e in errors] == ["a bug in one handler"]
        assert requests.get(base + "/", timeout=5).text == "fine\n"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_failing_error_report_does_not_cost_the_server_its_only_worker() -> None:
    class Server(BoundedServer):
        def handle_error(self, address: object, exc: BaseException) -> None:
            raise OSError("the log is on a full disk")

    server = Server(("127.0.0.1", 0), _Broken, Limits(workers=1))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for _ in range(3):
            assert requests.get(base + "/bug", timeout=5).status_code == 500
            assert requests.get(base + "/", timeout=5).text == "fine\n"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


CHILD = """
import resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
from watchfolder.mediahost.server import LIMITS, FileServer
import dataclasses
server = FileServer(("127.0.0.1", 0), Path(sys.argv[1]), "/tiktok/", dataclasses.replace(LIMITS, header_seconds=60))
server.start()
print(server.bound_port, flush=True)
sys.stdin.read()
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_the_server_neither_spins_nor_stops_answering(files: Path) -> None:
    """More clients than the process may have descriptors: the longest waiter is dropped for a new one."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(files)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    slow = []
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /tiktok/x HTTP/1.1\r\n")
            slow.append(sock)
        time.sleep(1.0)  # let it work through the queue
        before = _cpu_seconds(child.pid)
        time.sleep(1.0)
        assert _cpu_seconds(child.pid) - before < 0.5, "the server spins while out of descriptors"
        response = requests.get(f"http://127.0.0.1:{port}/tiktok/{NAME}", timeout=5)
        assert response.status_code == 200 and response.content == BODY
    finally:
        for sock in slow:
            sock.close()
        child.communicate(timeout=10)


def test_when_every_connection_is_being_answered_a_new_one_gets_503(tmp_path: Path) -> None:
    big = "D" * 32 + ".mp4"
    with open(tmp_path / big, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    for server in start(tmp_path, workers=2, max_connections=2, io_seconds=3.0):
        stuck = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.bound_port or 0))
            sock.sendall(f"GET /tiktok/{big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            stuck.append(sock)
        time.sleep(0.5)
        late = connect(server)
        assert read_answer(late).startswith(b"HTTP/1.1 503 ")
        late.close()
        for sock in stuck:
            sock.close()


# --- the /healthz and /metrics server -------------------------------------------------------------

@pytest.fixture
def metrics_server(make_rig: Any) -> Iterator[metrics.MetricsServer]:
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0"})
    server = metrics.MetricsServer(rig.settings, metrics.HealthMonitor())
    try:
        yield server
    finally:
        server.close()


def _healthz(server: metrics.MetricsServer) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)


def test_metrics_server_holds_no_thread_per_slow_client(metrics_server: metrics.MetricsServer) -> None:
    _healthz(metrics_server)
    before = threading.active_count()
    slow = []
    try:
        for _ in range(300):  # more than the server's connection cap: the oldest waiters are dropped
            sock = socket.create_connection(("127.0.0.1", metrics_server.port), timeout=10)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        time.sleep(0.5)
        assert threading.active_count() <= before + metrics.LIMITS.workers
        answer = _healthz(metrics_server)
        assert answer.status_code == 503 and answer.json()["problems"]  # "starting": no daemon in this test
        assert threading.active_count() <= before + metrics.LIMITS.workers
    finally:
        for sock in slow:
            sock.close()


def test_metrics_server_answers_huge_headers_and_bad_requests_cleanly(metrics_server: metrics.MetricsServer) -> None:
    base = f"http://127.0.0.1:{metrics_server.port}"
    assert requests.get(base + "/metrics", headers={"X-Big": "a" * 100_000}, timeout=5).status_code == 431
    assert requests.get(base + "/metrics", headers={f"X-{i}": "a" for i in range(200)}, timeout=5).status_code == 431
    assert requests.post(base + "/", data=b"x" * 1_000_000, timeout=5).status_code == 413
    assert requests.get(base + "/metrics", timeout=5).status_code == 200
    assert _healthz(metrics_server).status_code == 503


def test_metrics_server_cuts_off_a_slowloris_client_and_keeps_answering(make_rig: Any) -> None:
    rig = make_rig(overrides={"metrics.listen": "127.0.0.1:0"})
    limits = dataclasses.replace(metrics.LIMITS, header_seconds=1.0)
    server = metrics.MetricsServer(rig.settings, metrics.HealthMonitor(), limits=limits)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        started = time.monotonic()
        for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            sock.sendall(bytes([byte]))
            if select.select([sock], [], [], 0.2)[0]:
                break
        elapsed = time.monotonic() - started
        answer = read_answer(sock)
        sock.close()
        assert elapsed < 3 and answer.startswith(b"HTTP/1.1 408 ")
        assert _healthz(server).status_code == 503
    finally:
        server.close()
