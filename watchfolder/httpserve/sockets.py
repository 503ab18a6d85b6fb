"""Socket calls that must not raise: a client may be gone at any moment, and that is never our error."""

from __future__ import annotations

import socket
import struct


def send_quietly(sock: socket.socket, data: bytes, *, blocking: bool = False) -> None:
    """Send data, ignoring a client that is gone; non-blocking by default (what does not fit is dropped)."""
    try:
        if blocking:
            sock.settimeout(1.0)
            sock.sendall(data)
        else:
            sock.send(data)
    except OSError:
        pass


def abort(sock: socket.socket) -> None:
    """Make the coming close a reset: what the kernel still holds for a too-slow client is dropped."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


def close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
