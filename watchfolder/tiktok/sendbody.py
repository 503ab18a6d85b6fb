"""How one chunk's bytes go from the open file to the connection (and, when asked, through a hash).

Over plain HTTP without a hash the body goes with ``socket.sendfile`` (zero-copy). Over HTTPS, or when
the caller wants every byte hashed as it is sent, the bytes are read in blocks into one reused buffer,
handed to the hash, and written: each byte is read from the file once.
"""

from __future__ import annotations

import http.client
import io
from typing import Protocol

BLOCK = 1024 * 1024


class Hasher(Protocol):
    """What ``send_body`` feeds: ``hashlib`` objects fit, and so does anything with ``update``."""

    def update(self, data: bytes | memoryview, /) -> None: ...


def send_body(connection: http.client.HTTPConnection, file: io.BufferedIOBase, first: int, count: int,
              *, hasher: Hasher | None = None) -> int:
    """Stream ``count`` bytes of ``file`` from offset ``first`` on ``connection``'s socket; return how many
    were sent (fewer only if the file shrank under us). With ``hasher``, every block is given to it, in
    order, before it is written, so after a short or failed send it has seen at least what was sent."""
    sock = connection.sock
    assert sock is not None  # connect() succeeded and nothing has closed it since
    if hasher is None and not isinstance(connection, http.client.HTTPSConnection):
        return sock.sendfile(file, offset=first, count=count)
    # The bytes must come into user space (TLS, the hash): reuse one buffer rather than allocate per block.
    view = memoryview(bytearray(min(BLOCK, count)))
    file.seek(first)
    sent = 0
    while sent < count:
        got = file.readinto(view[: min(BLOCK, count - sent)])
        if not got:
            break
        block = view[:got]
        if hasher is not None:
            hasher.update(block)
        sock.sendall(block)
        sent += got
    return sent
