"""The emulator behind TLS, for measuring what HTTPS adds (the real API is HTTPS; the emulator serves HTTP).

``python -m bench.tlsemu --cert CERT --key KEY [--config FILE] [--user NAME]...`` starts the project's
emulator on a free loopback port, wraps its listening socket in TLS with the given self-signed
certificate, points its ``upload_url``s at ``https://``, prints the same lines as
``watchfolder emulator`` (with an ``https`` base URL) and serves until SIGTERM or SIGINT.

The wrapping lives here rather than in the emulator because only the benchmarks need it.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from watchfolder.emulator import Emulator, EmulatorConfig
from watchfolder.emulator.config import load_config


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """Given a folder, write a throwaway self-signed certificate for 127.0.0.1 (P-256, valid two days)
    and its key there with ``openssl``; return (certificate, key). Raise CalledProcessError if it fails."""
    cert, key = folder / "emulator-cert.pem", folder / "emulator-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


def serve_tls(emulator: Emulator, cert: Path, key: Path) -> str:
    """Start ``emulator`` on a free 127.0.0.1 port and wrap its listening socket in TLS; return the https
    base URL. Nothing can connect before the URL is known, so no plain connection slips through."""
    plain_url = emulator.start("127.0.0.1", 0)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = emulator.server
    assert server is not None  # started just above
    # The wrapped socket keeps the same file descriptor, so the serving thread's selector still
    # watches the right one; each accepted connection does its handshake when accepted.
    server.socket = context.wrap_socket(server.socket, server_side=True)
    base_url = plain_url.replace("http://", "https://", 1)
    emulator.config.upload_base_url = base_url
    return base_url


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tlsemu", description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, type=Path)
    parser.add_argument("--key", required=True, type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--user", action="append", default=[])
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else EmulatorConfig()
    emulator = Emulator(config)
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    base_url = serve_tls(emulator, args.cert, args.key)
    try:
        lines = [f"base_url: {base_url}", f"control: {base_url}/_emulator/", f"client_key: {config.client_key}",
                 f"client_secret: {config.client_secret}  (the emulator's own; not a real secret)"]
        for name in args.user:
            user = emulator.add_user(name)
            lines.append(f"user: {name} open_id={user.open_id} access_token={user.access_token} "
                         f"refresh_token={user.refresh_token}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
