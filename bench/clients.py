"""The raw baselines: the same init and chunk plan as the daemon, sent by bare clients with nothing else to do.

``python -m bench.clients MODE --base-url URL --token TOKEN --file FILE --chunk-size N [--cafile CERT]``
sends one inbox video init, then PUTs every chunk, and prints one JSON line: the publish_id and the CPU
(user, system) the PUT loop took in this process. Modes:

- ``httpclient``: ``http.client``, 1 MiB blocks read into one reused buffer and sent with ``sendall``;
- ``hashing``: the same, each block also handed to SHA-256 before it is sent (what the daemon does when it
  hashes while sending: the fair comparison for it);
- ``memory``: the same blocks sent from memory, no file read and no hash: what the stream alone costs (over
  TLS, the cipher and the socket); its JSON line also names the TLS cipher the server picked;
- ``sendfile``: ``http.client`` headers, then ``socket.sendfile`` (zero-copy; plain HTTP only);
- ``requests``: ``requests`` streaming a file object (what a straightforward client would write).

``curl_command`` builds the curl baseline: one curl process, one kept-alive connection, one transfer
per chunk file (curl cannot send a byte range of a larger file, so the file is split beforehand).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import resource
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from watchfolder.tiktok.chunks import ChunkPlan, plan

BLOCK = 1024 * 1024
INBOX_INIT = "/v2/post/publish/inbox/video/init/"


def connect(url: str, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=120, context=context)
    return http.client.HTTPConnection(parts.netloc, timeout=120)


def init(base_url: str, token: str, chunk_plan: ChunkPlan, context: ssl.SSLContext | None) -> tuple[str, str]:
    """Send an inbox video init for ``chunk_plan``; return (publish_id, upload_url). Raise RuntimeError if refused."""
    body = json.dumps({"source_info": {"source": "FILE_UPLOAD", "video_size": chunk_plan.size,
                                       "chunk_size": chunk_plan.chunk_size,
                                       "total_chunk_count": chunk_plan.count}})
    connection = connect(base_url, context)
    connection.request("POST", INBOX_INIT, body=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"})
    answer = json.loads(connection.getresponse().read())
    connection.close()
    if answer["error"]["code"] != "ok":
        raise RuntimeError(f"init refused: {answer['error']}")
    return answer["data"]["publish_id"], answer["data"]["upload_url"]


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def put_http_client(upload_url: str, path: Path, chunk_plan: ChunkPlan, context: ssl.SSLContext | None,
                    mode: str) -> str:
    """PUT every chunk over one kept-alive connection: 1 MiB blocks (``httpclient``; ``hashing`` with a SHA-256
    of every block; ``memory`` from one buffer, not the file), or ``socket.sendfile`` (``sendfile``). Return the
    TLS cipher's name ("" over plain HTTP)."""
    connection = connect(upload_url, context)
    digest = hashlib.sha256()
    target = _target(upload_url)
    view = memoryview(bytearray(BLOCK))
    with open(path, "rb") as file:
        for first, last in chunk_plan.ranges():
            count = last - first + 1
            connection.putrequest("PUT", target, skip_accept_encoding=True)
            connection.putheader("Content-Type", "video/mp4")
            connection.putheader("Content-Length", str(count))
            connection.putheader("Content-Range", f"bytes {first}-{last}/{chunk_plan.size}")
            connection.endheaders()
            assert connection.sock is not None
            if mode == "sendfile":
                connection.sock.sendfile(file, offset=first, count=count)
            else:
                file.seek(first)
                left = count
                while left:
                    got = min(BLOCK, left) if mode == "memory" else file.readinto(view[:min(BLOCK, left)])
                    if mode == "hashing":
                        digest.update(view[:got])
                    connection.sock.sendall(view[:got])
                    left -= got
            answer = connection.getresponse()
            answer.read()
            if answer.status not in (201, 206):
                raise RuntimeError(f"chunk {first}-{last}: HTTP {answer.status}")
    cipher = connection.sock.cipher() if isinstance(connection.sock, ssl.SSLSocket) else None
    connection.close()
    return cipher[0] if cipher else ""


class _Range:
    """A file object over ``count`` bytes of a file from ``first``, with a length (so requests sends
    Content-Length, not chunked encoding)."""

    def __init__(self, file: Any, first: int, count: int) -> None:
        self.file, self.left = file, count
        self.file.seek(first)

    def __len__(self) -> int:
        return self.left

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.file.read(size)
        self.left -= len(data)
        return data


def put_requests(upload_url: str, path: Path, chunk_plan: ChunkPlan, cafile: str | None) -> None:
    import requests

    session = requests.Session()
    with open(path, "rb") as file:
        for first, last in chunk_plan.ranges():
            count = last - first + 1
            answer = session.put(upload_url, data=_Range(file, first, count), timeout=120, verify=cafile or True,
                                 headers={"Content-Type": "video/mp4", "Content-Length": str(count),
                                          "Content-Range": f"bytes {first}-{last}/{chunk_plan.size}"})
            if answer.status_code not in (201, 206):
                raise RuntimeError(f"chunk {first}-{last}: HTTP {answer.status_code}")
    session.close()


def curl_command(upload_url: str, chunk_files: list[Path], chunk_plan: ChunkPlan, cafile: str | None) -> list[str]:
    """The curl baseline: one process, one connection kept alive across ``--next`` transfers, one per chunk.

    ``Expect:`` is emptied so curl does not wait for a ``100 Continue`` before each chunk. ``--upload-file``
    appends the file's name to a URL whose path ends in "/", so the path loses that slash (the emulator
    serves both spellings).
    """
    parts = urlsplit(upload_url)
    upload_url = parts._replace(path=parts.path.rstrip("/") or "/").geturl()
    command = ["curl", "--silent", "--show-error", "--fail"]
    for index, ((first, last), chunk_file) in enumerate(zip(chunk_plan.ranges(), chunk_files, strict=True)):
        if index:
            command.append("--next")
        command += ["--output", "/dev/null", "--upload-file", str(chunk_file), "-H", "Expect:",
                    "-H", "Content-Type: video/mp4", "-H", f"Content-Range: bytes {first}-{last}/{chunk_plan.size}"]
        if cafile:
            command += ["--cacert", cafile]
        command.append(upload_url)
    return command


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("httpclient", "hashing", "memory", "sendfile", "requests"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--chunk-size", required=True, type=int)
    parser.add_argument("--cafile")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    chunk_plan = plan(args.file.stat().st_size, args.chunk_size)
    publish_id, upload_url = init(args.base_url, args.token, chunk_plan, context)
    before = resource.getrusage(resource.RUSAGE_SELF)
    cipher = ""
    if args.mode == "requests":
        put_requests(upload_url, args.file, chunk_plan, args.cafile)
    else:
        cipher = put_http_client(upload_url, args.file, chunk_plan, context, args.mode)
    after = resource.getrusage(resource.RUSAGE_SELF)
    sys.stdout.write(json.dumps({"publish_id": publish_id, "cpu_user": after.ru_utime - before.ru_utime,
                                 "cpu_system": after.ru_stime - before.ru_stime, "cipher": cipher}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
