"""How one chunk's bytes go from the open file to the connection (and, when asked, through a hash).

Over plain HTTP without a hash the body goes with ``socket.sendfile`` (zero-copy). Over HTTPS, or when
the caller wants every byte hashed as it is sent, the bytes are read in blocks into one reused buffer,
handed to the hash, and written: each byte is read from the file once.
"""

from __future__ import annotations

import http.client
import io
from typing import Protocol

# 1 MiB blocks, each read into one reused buffer, hashed, then written with sendall: the cheap options
# measured for the TLS path were all within the noise of this one (TLS 1.3, AES-256-GCM, to a loopback
# receiver in another process; 256 MiB a trial; the sender thread's CPU; median ratio to this path in the
# same round over 11 to 15 interleaved rounds, 7 for 64 KiB and TCP_CORK; 2 cores shared with other work).
# This path took 1.47 CPU-s per GB with the hash: SHA-256 alone 0.68, the read and TLS without it 0.87.
#   blocks of 64 KiB 1.06, 256 KiB 0.99, 4 MiB 1.04; SO_SNDBUF 4 MiB 1.00; TCP_CORK 1.02;
#   records batched through a MemoryBIO and written with one raw sendall per 256 KiB / 1 MiB 0.93 / 0.90,
#   rounds spread 0.64 to 1.20 (not clearly better, and it means owning the socket under HTTPSConnection);
#   hashing and sending from an mmap window instead of a read 0.98 (and the bytes hashed could then differ
#   from the bytes sent if the file changes meanwhile).
# Over plain HTTP with a hash, 1 MiB and 4 MiB blocks cost the same, and hashing an mmap window then
# sendfile-ing it cost 1.19 times as much (page faults) as reading into the buffer.
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
