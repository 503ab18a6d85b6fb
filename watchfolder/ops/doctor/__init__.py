"""``watchfolder check`` as a doctor: every check, each ending in ok, warn or fail with how to fix it.

Nothing here starts the daemon, renews a token or writes to the media tree: the checks read the
config, the folders, the state directory, the mount table and the inotify limits, and (unless
offline) ask TikTok what each signed-in account may do, fetch a probe file through the media host's
URL and compare clocks with TikTok's. A question that cannot be answered (no network) is a
warning, never a crash. No message carries a token or the client secret.

The checks come in families, one module each: ``setup`` (config, folders), ``local`` (state
directory, database, watching), ``accounts`` (sign-ins, what TikTok allows), ``reach`` (media host,
clock); ``findings`` holds the ``Check`` they all return.
"""

from __future__ import annotations

from collections.abc import Sequence

from watchfolder import fsinfo
from watchfolder.config.settings import Settings
from watchfolder.ops.doctor.accounts import sign_in
from watchfolder.ops.doctor.findings import FAIL, OK, WARN, Check
from watchfolder.ops.doctor.local import state_dir, watching
from watchfolder.ops.doctor.reach import clock, media_host
from watchfolder.ops.doctor.setup import captions, config, folders

__all__ = ["FAIL", "OK", "WARN", "Check", "run"]


def run(settings: Settings, *, now: float, offline: bool = False, mounts: Sequence[fsinfo.Mount] | None = None,
        inotify_limits: dict[str, int | None] | None = None, timeout: float = 10.0) -> list[Check]:
    """Given loaded settings and the time, return every check in reading order.

    ``mounts`` and ``inotify_limits`` default to this machine's; ``offline`` skips TikTok, the media
    host's URL and the clock comparison.
    """
    table = list(fsinfo.read_mounts() if mounts is None else mounts)
    checks = [*config(settings), *folders(settings), *captions(settings), *state_dir(settings, table, now),
              *watching(settings, table, inotify_limits)]
    for account in settings.accounts:
        checks += sign_in(settings, account, now, offline, timeout)
    checks += media_host(settings, offline, timeout)
    checks.append(clock(settings, now, offline, timeout))
    return checks
