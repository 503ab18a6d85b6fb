"""``watchfolder emulator [--listen HOST:PORT] [--config FILE] [--user NAME]…``: run the emulator in the
foreground until SIGINT or SIGTERM, printing where it listens and the demo credentials."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from watchfolder.emulator.config import EmulatorConfig, EmulatorConfigError, load_config
from watchfolder.emulator.core import Emulator

DEFAULT_LISTEN = "127.0.0.1:8900"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchfolder emulator",
        description="Serve a strict local TikTok Content Posting API and Login Kit for tests and demos: "
                    "TikTok's rate limits, caps and checks, with faults and the clock driven through the "
                    "loopback control endpoint /_emulator/ (GET health, records, clock; POST clock/advance, "
                    "faults). Point watchfolder at it with tiktok.api_base_url and the printed client key.")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve on; port 0 picks a free one (default {DEFAULT_LISTEN})")
    parser.add_argument("--config", metavar="FILE", help="YAML file of emulator settings")
    parser.add_argument("--user", action="append", default=[], metavar="NAME",
                        help="create a creator with all posting scopes and print its tokens (repeatable)")
    parser.add_argument("--private-user", action="append", default=[], metavar="NAME",
                        help="the same, with a private account (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="print one line per request to stderr")
    return parser


def parse_listen(value: str) -> tuple[str, int]:
    """Given ``HOST:PORT`` (``[::1]:PORT`` for IPv6), return (host, port); raise ValueError if malformed."""
    host, separator, port = value.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str]) -> int:
    """Run the emulator until SIGINT/SIGTERM. Return 0 after a clean stop, 2 on bad usage or config, 1 if
    the address cannot be bound."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        host, port = parse_listen(args.listen)
        config = load_config(args.config) if args.config else EmulatorConfig()
    except (ValueError, EmulatorConfigError) as error:
        sys.stderr.write(f"watchfolder emulator: {error}\n")
        return 2
    if args.verbose:
        config.verbose = True
    emulator = Emulator(config)
    try:
        base_url = emulator.start(host, port)
    except OSError as error:
        sys.stderr.write(f"watchfolder emulator: cannot listen on {args.listen}: {error}\n")
        return 1
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()  # only set a flag here; the main thread stops the server

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        lines = [f"base_url: {base_url}", f"control: {base_url}/_emulator/",
                 f"client_key: {config.client_key}",
                 f"client_secret: {config.client_secret}  (the emulator's own; not a real secret)"]
        for name, private in [(n, False) for n in args.user] + [(n, True) for n in args.private_user]:
            user = emulator.add_user(name, private_account=private)
            lines.append(f"user: {name} open_id={user.open_id} access_token={user.access_token} "
                         f"refresh_token={user.refresh_token}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    except ValueError as error:
        sys.stderr.write(f"watchfolder emulator: {error}\n")
        return 2
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
