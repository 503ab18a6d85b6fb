"""A daemon on real folders, talking real HTTP to the emulator, run in a thread for end-to-end tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from watchfolder.config import settings as config
from watchfolder.daemon import wiring
from watchfolder.daemon.loop import Daemon
from watchfolder.tiktok.tokens import Tokens, TokenStore

SCOPES = ("user.info.basic", "video.upload", "video.publish")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


class Rig:
    """One config (root, state_dir, accounts) bound to one emulator, and a daemon that can start and stop."""

    def __init__(self, base: Path, emulator: Any, *, accounts: Mapping[str, Mapping[str, Any]] | None = None,
                 overrides: Mapping[str, Any] | None = None, sign_in: bool = True) -> None:
        self.base = base
        self.emulator = emulator
        self.root = base / "tiktok"
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir = base / "state"
        accounts = dict(accounts or {"alice": {"mode": "inbox"}})
        document: dict[str, Any] = {
            "root": str(self.root),
            "state_dir": str(self.state_dir),
            "tiktok": {"client_key": emulator.config.client_key, "api_base_url": emulator.base_url,
                       "init_per_minute": 0, "status_per_minute": 0, "creator_info_per_minute": 0,
                       # The daemon plans with the caps this emulator enforces (0: none).
                       "drafts_per_day": emulator.config.pending_share_cap,
                       "posts_per_day": emulator.config.direct_post_daily_cap},
            "watch": {"settle_seconds": 0.3, "poll_interval": 0.2},
            "upload": {"status_poll_seconds": 0.1, "retry_initial": 0.2, "retry_max": 1},
            "accounts": {name: dict(values) for name, values in accounts.items()},
        }
        for dotted, value in (overrides or {}).items():
            node = document
            *parents, last = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        self.config_path = base / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.env = {"WATCHFOLDER_CLIENT_SECRET": emulator.config.client_secret}
        self.settings = config.load(self.config_path, env=self.env)
        self.users: dict[str, Any] = {}
        if sign_in:
            for name in accounts:
                self.sign_in(name)
        self.daemon: Daemon | None = None
        self.thread: threading.Thread | None = None
        self.exit_code: int | None = None

    def sign_in(self, account: str, scopes: tuple[str, ...] = SCOPES, **user_options: Any) -> Any:
        user = self.emulator.add_user(account, scopes=scopes, **user_options)
        self.users[account] = user
        self.store_tokens(account, user.access_token, user.refresh_token, user.open_id, scopes)
        return user

    def store_tokens(self, account: str, access: str, refresh: str, open_id: str, scopes: tuple[str, ...],
                     expires_in: float = 86400) -> None:
        now = self.emulator.clock.now()
        store = TokenStore(self.state_dir)
        store.check_permissions()
        store.save(Tokens(account=account, open_id=open_id, access_token=access, access_expires_at=now + expires_in,
                          refresh_token=refresh, refresh_expires_at=now + 365 * 86400, scopes=scopes,
                          updated_at=time.time()))

    def with_folders(self, account: str = "alice") -> Rig:
        """Create the account's inbox/, processing/, done/ and failed/ now (the daemon would at its start)."""
        for name in ("inbox", "processing", "done", "failed"):
            self.folder(account, name).mkdir(parents=True, exist_ok=True)
        return self

    def folder(self, account: str, name: str) -> Path:
        return self.root / account / name

    def start(self, hooks: list[Any] | None = None, *, wait: bool = True) -> Daemon:
        """Build the daemon on the emulator's clock and run it in a thread; with ``wait``, return once it
        is ready (hooks told, a first pass of the loop made), else at once."""
        self.daemon = wiring.build(self.settings, clock=self.emulator.clock.now, hooks=hooks or [])

        def run() -> None:
            assert self.daemon is not None
            self.exit_code = self.daemon.run()

        self.thread = threading.Thread(target=run, name="test-daemon", daemon=True)
        self.thread.start()
        if not wait:
            return self.daemon
        if not self.daemon.ready.wait(10):
            raise AssertionError("the daemon was not ready within 10 s")
        return self.daemon

    def stop(self) -> int | None:
        if self.daemon is not None and self.thread is not None:
            self.daemon.stop.set()
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the daemon did not stop within 30 s"
        return self.exit_code

    def drop(self, account: str, name: str, source: Path) -> Path:
        """Move a finished file into the inbox the way a careful writer does (rename, atomic)."""
        target = self.folder(account, "inbox") / name
        source.rename(target)
        return target

    def sidecar(self, account: str, name: str, folder: str = "done") -> dict[str, Any]:
        return json.loads((self.folder(account, folder) / f"{name}.json").read_text(encoding="utf-8"))

    def wait_sidecar(self, account: str, name: str, folder: str = "done", timeout: float = 30) -> dict[str, Any]:
        other = "failed" if folder == "done" else "done"
        path = self.folder(account, folder) / f"{name}.json"
        wrong = self.folder(account, other) / f"{name}.json"

        def ready() -> bool:
            if wrong.exists():
                raise AssertionError(f"{name} went to {other}/: {wrong.read_text()}")
            return path.exists()

        wait_for(ready, timeout, what=f"{account}/{folder}/{name}.json")
        return self.sidecar(account, name, folder)
