"""The emulator as tests, the demo and the benchmarks use it: its state, and the HTTP server that serves it
from a background thread."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from types import TracebackType

from watchfolder.emulator.accounts import User
from watchfolder.emulator.clock import Clock, OffsetClock
from watchfolder.emulator.config import EmulatorConfig
from watchfolder.emulator.server import EmulatorServer, make_server
from watchfolder.emulator.state import DEFAULT_SCOPES, EmulatorState


class Emulator:
    """A strict local TikTok Content Posting API.

    Given a config (default: TikTok's documented numbers) and a clock (default: real time plus an offset
    that ``clock.advance`` grows), ``start`` serves the API on a loopback port until ``stop``. ``config``,
    ``clock``, ``faults`` and ``records`` are the state's own objects; ``state`` is everything else.
    """

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.state = EmulatorState(config or EmulatorConfig(), clock or OffsetClock())
        self.config = self.state.config
        self.clock = self.state.clock
        self.faults = self.state.faults
        self.records = self.state.records
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str | None:
        """``http://HOST:PORT`` while started, else None."""
        return self.state.base_url

    @property
    def server(self) -> EmulatorServer | None:
        """The running HTTP server (None unless started); the benchmarks wrap its socket in TLS."""
        return self._server

    @property
    def authorize_user(self) -> str | None:
        """The user the authorize page signs in when the request names none (None: the first user)."""
        return self.state.authorize_user

    @authorize_user.setter
    def authorize_user(self, name: str | None) -> None:
        self.state.authorize_user = name

    # Lifecycle.

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port) in a background thread; return the base URL.

        Raise RuntimeError if already started, OSError if the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the emulator is running already")
        self._server = make_server(host, port, self.state)
        self.state.temp_dir = tempfile.mkdtemp(prefix="tiktok-emulator-")
        bound_port = self._server.server_address[1]
        shown_host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - shown, not bound
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        self.state.base_url = base_url = f"http://{shown_host}:{bound_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="tiktok-emulator", daemon=True)
        self._thread.start()
        return base_url

    def stop(self) -> None:
        """Stop serving, close every open connection, stop downloads and delete received bytes.

        Safe to call twice or before ``start``.
        """
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.state.cancel_downloads()
        if self.state.temp_dir:
            shutil.rmtree(self.state.temp_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # The test API: users, tokens, tasks.

    def add_user(self, name: str, scopes: Sequence[str] = DEFAULT_SCOPES, private_account: bool = False,
                 privacy_level_options: Sequence[str] | None = None, max_video_post_duration_sec: int = 600,
                 access_ttl: int | None = None, refresh_ttl: int | None = None) -> User:
        """Create a creator with a fresh token pair; return it (``.open_id``, ``.access_token``,
        ``.refresh_token`` hold the latest tokens). Raise ValueError for an unknown scope or a taken name."""
        return self.state.add_user(name, scopes, private_account=private_account,
                                   privacy_level_options=privacy_level_options,
                                   max_video_post_duration_sec=max_video_post_duration_sec,
                                   access_ttl=access_ttl, refresh_ttl=refresh_ttl)

    def user(self, name_or_open_id: str) -> User:
        """Return a user by name or open_id; raise KeyError if there is none."""
        return self.state.user(name_or_open_id)

    def expire_access_token(self, token_or_open_id: str) -> int:
        """Make an access token (or all of one open_id's) expired now; return how many. The refresh
        token still works, as after a real expiry."""
        return self.state.expire_access_token(token_or_open_id)

    def revoke(self, open_id: str) -> None:
        """Revoke the app's grant for ``open_id``: every token stops working, and its unfinished publish
        tasks end FAILED with ``auth_removed``. Raise KeyError for an unknown open_id."""
        self.state.revoke(open_id)

    def expire_upload_url(self, publish_id: str) -> None:
        """Make the task's ``upload_url`` expired now (its PUTs get 403). Raise KeyError if unknown."""
        self.state.expire_upload_url(publish_id)

    def upload_file(self, publish_id: str) -> str | None:
        """Return the path of the bytes received for a task (with ``keep_uploads``), or None if gone."""
        return self.state.upload_file(publish_id)
