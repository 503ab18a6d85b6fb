"""A simulated uplink for the WAN benchmark: a delaying TCP proxy, and a rate-limited link between two
network namespaces.

``python -m bench.wanlink --listen HOST:PORT --upstream HOST:PORT --rtt-ms N [--rate-bits N]`` forwards every
connection to ``--upstream``, holding each piece of data ``rtt / 2`` in each direction (so a request and its
answer gain one round trip), and with ``--rate-bits`` also paces the client-to-upstream direction at that
rate (the fallback when namespaces are not allowed). It prints ``listening: HOST:PORT`` and serves until
SIGTERM. Bytes wait in a bounded queue, so a fast sender feels the link through TCP's own back-pressure.

:class:`Namespaces` builds the link the kernel simulates: two namespaces joined by a veth pair, with a
``tc … tbf`` qdisc on the client side's egress (the uplink's rate; netem is not needed, the proxy adds the
round trip). Only addresses inside those namespaces are used.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType

READ = 256 * 1024
CLONE_NEWNET = 0x40000000


class _Direction:
    """Moves bytes from ``source`` to ``target``, each piece released ``delay`` seconds after it came in (and
    after the link has serialised it when ``rate`` bytes/s is set)."""

    def __init__(self, source: socket.socket, target: socket.socket, delay: float, rate: float | None,
                 limit: int) -> None:
        self.source, self.target, self.delay, self.rate, self.limit = source, target, delay, rate, limit
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.link_free = 0.0
        self.cond = threading.Condition()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.source.recv(READ)
            except OSError:
                data = b""
            now = time.monotonic()
            if self.rate and data:
                self.link_free = max(now, self.link_free) + len(data) / self.rate
                now = self.link_free
            with self.cond:
                while self.queued > self.limit:
                    self.cond.wait()
                self.queue.append((now + self.delay, data))
                self.queued += len(data)
                self.cond.notify_all()
            if not data:
                return

    def _write(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                due, data = self.queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    self.target.shutdown(socket.SHUT_WR)
                    return
                self.target.sendall(data)
            except OSError:
                self.source.close()
                return
            finally:
                with self.cond:
                    self.queued -= len(data)
                    self.cond.notify_all()


def serve(listener: socket.socket, upstream: tuple[str, int], rtt: float, rate: float | None) -> None:
    """Accept connections on ``listener`` forever and relay each to ``upstream`` (see the module docstring)."""
    limit = max(16 * 1024 * 1024, int(2 * (rate or 0) * rtt))
    while True:
        client, _ = listener.accept()
        server = socket.create_connection(upstream)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _Direction(client, server, rtt / 2, rate, limit).start()
        _Direction(server, client, rtt / 2, None, limit).start()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wanlink", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, type=_address)
    parser.add_argument("--upstream", required=True, type=_address)
    parser.add_argument("--rtt-ms", required=True, type=float)
    parser.add_argument("--rate-bits", type=float, help="pace the upstream direction at this rate (bits/s)")
    args = parser.parse_args(argv)

    def on_signal(number: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    listener = socket.create_server(args.listen)
    host, port = listener.getsockname()[:2]
    sys.stdout.write(f"listening: {host}:{port}\n")
    sys.stdout.flush()
    serve(listener, args.upstream, args.rtt_ms / 1000, args.rate_bits / 8 if args.rate_bits else None)
    return 0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Namespaces:
    """Two network namespaces (client, server) joined by a veth pair, ``CLIENT_IP`` ↔ ``SERVER_IP``, the
    client side's egress limited by ``tbf``. ``enter``/``leave`` move the calling thread (and the processes
    it starts afterwards) into the client namespace and back."""

    CLIENT_IP, SERVER_IP = "10.203.0.1", "10.203.0.2"

    def __init__(self) -> None:
        tag = f"{os.getpid()}"
        self.client, self.server = f"wfwan-c-{tag}", f"wfwan-s-{tag}"
        self._home: int | None = None
        self._libc = ctypes.CDLL(None, use_errno=True)

    def create(self) -> Namespaces:
        """Make both namespaces and the veth pair; raise CalledProcessError (after cleaning up) if not allowed."""
        try:
            _ip("netns", "add", self.client)
            _ip("netns", "add", self.server)
            _ip("-n", self.client, "link", "add", "wan0", "type", "veth", "peer", "name", "wan1", "netns",
                self.server)
            for ns, device, address in ((self.client, "wan0", self.CLIENT_IP), (self.server, "wan1", self.SERVER_IP)):
                _ip("-n", ns, "addr", "add", f"{address}/30", "dev", device)
                _ip("-n", ns, "link", "set", device, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except (OSError, subprocess.CalledProcessError):
            self.remove()
            raise
        return self

    def shape(self, rate_bits: int) -> None:
        """Set the uplink's rate: ``tbf`` on the client's veth, a burst of 10 ms at that rate (at least 64 KB,
        so a segmentation-offloaded packet always fits) and up to 50 ms of queue."""
        burst = max(64 * 1024, rate_bits // 8 // 100)
        subprocess.run(["ip", "netns", "exec", self.client, "tc", "qdisc", "replace", "dev", "wan0", "root", "tbf",
                        "rate", f"{rate_bits}bit", "burst", str(burst), "latency", "50ms"],
                       check=True, capture_output=True, text=True)

    def in_server(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.server, *command]

    def enter(self) -> None:
        self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.client}", os.O_RDONLY)
        try:
            if self._libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the client namespace failed")
        finally:
            os.close(target)

    def leave(self) -> None:
        if self._home is not None:
            self._libc.setns(self._home, CLONE_NEWNET)
            os.close(self._home)
            self._home = None

    def remove(self) -> None:
        self.leave()
        for name in (self.client, self.server):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
