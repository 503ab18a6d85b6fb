"""The media host: stage photos (and pull_from_url videos) where TikTok can fetch them, serve, self-test.

TikTok pulls photo posts from a URL on a verified prefix, within an hour, without following
redirects. Staged files live either in ``staging_dir``, served by the built-in server
(``server``), or in ``publish_dir``, a folder an existing web server already serves (``staging``
does the placing and the expiry index; ``probe`` the end-to-end self-test).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from watchfolder.mediahost import probe as probing
from watchfolder.mediahost.server import FileServer
from watchfolder.mediahost.staging import INDEX_NAME, Staged, Staging

__all__ = ["INDEX_NAME", "MediaHost", "Staged"]


class MediaHost(Staging):
    """Stages files for TikTok to pull, serves them (or places them in publish_dir), and removes them."""

    def __init__(
        self, *, url_prefix: str, staging_dir: Path, serve: tuple[str, int] | None = None,
        publish_dir: Path | None = None, pull_window_seconds: float = 3600 + 600,
    ) -> None:
        """Given the settings, prepare the host (creating staging_dir); raise ValueError on a bad combination."""
        if not url_prefix.endswith("/"):
            raise ValueError(f"media_host.url_prefix must end with '/', got {url_prefix!r}")
        if (serve is None) == (publish_dir is None):
            raise ValueError("media_host needs exactly one of serve and publish_dir")
        if publish_dir is not None and Path(publish_dir).resolve() == Path(staging_dir).resolve():
            # The index lists every staged name; a web server must never be able to hand it out.
            raise ValueError("media_host.publish_dir must not be the staging folder")
        files_dir = Path(publish_dir) if publish_dir is not None else Path(staging_dir)
        super().__init__(url_prefix=url_prefix, staging_dir=staging_dir, files_dir=files_dir,
                         pull_window_seconds=pull_window_seconds)
        self._serve = serve
        self._server = FileServer(serve, self.files_dir, urlsplit(url_prefix).path or "/") if serve else None

    def start(self) -> None:
        """Start the built-in server in a thread (no-op for publish_dir, or when already started)."""
        if self._server is not None:
            self._server.start()

    def stop(self) -> None:
        """Stop the built-in server and wait for its thread; safe to call when not started."""
        if self._server is not None:
            self._server.stop()

    @property
    def bound_port(self) -> int | None:
        """The port the built-in server listens on (useful when serve asked for port 0), else None."""
        return self._server.bound_port if self._server is not None else None

    def probe(self, timeout: float = 10) -> tuple[bool, str]:
        """Stage a tiny file, GET it through url_prefix without following redirects, compare, remove it.

        Also GET url_prefix itself: a server that lists the folder gives away the unguessable names.
        Return (True, what worked and any caveat) or (False, what went wrong and what to check).
        In serve mode the built-in server must be started first.
        """
        where = (f"the built-in server ({self._serve[0]}:{self.bound_port or self._serve[1]})" if self._serve
                 else f"the folder {self.files_dir}")
        return probing.probe(url_prefix=self.url_prefix, files_dir=self.files_dir, where=where, timeout=timeout)
