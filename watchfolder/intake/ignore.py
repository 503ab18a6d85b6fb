"""Which names in an inbox are junk: hidden files, partial downloads, NAS and OS system folders.

The rules apply to one path component (a file or folder name), never to a whole path, so a
folder that is ignored hides everything under it. Matching is case-insensitive because the same
share is written from Windows, macOS and Linux clients (``THUMBS.DB``, ``#Recycle``).
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Sequence

# The interface's list, then the extras from common NAS/OS practice. Hidden names (".*") are handled
# before any pattern, so ".DS_Store", "._clip.mp4", ".stfolder", ".~tmp~" and Syncthing's
# ".syncthing.x.tmp" need no entry of their own; they are listed anyway where the interface names them,
# so this table can be checked against it line by line.
BUILTIN_PATTERNS: tuple[str, ...] = (
    # partial downloads and temp files: the writer will rename them when it is done
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.tmp",
    "*.temp",
    "~$*",            # Office lock files
    "*.!sync",        # Resilio Sync
    "*.syncthing.*",  # Syncthing temp names (".syncthing.x.tmp", "~syncthing~x.tmp" is caught by *.tmp)
    ".~tmp~",         # Syncthing temp folder
    "*.!qb",          # qBittorrent incomplete files
    # NAS and OS system folders and files
    "@eadir",         # Synology thumbnails and metadata
    "#recycle",       # Synology recycle bin
    "#snapshot",      # Synology snapshots
    "@recycle",       # QNAP recycle bin
    ".stfolder",      # Syncthing folder marker
    "lost+found",
    "__macosx",       # macOS zip leftovers
    "thumbs.db",
    "desktop.ini",
    "*@synoeastream",  # Synology extended-attribute streams
    "*@synoresource",
)


def _compile(patterns: Sequence[str]) -> re.Pattern[str]:
    """Given fnmatch globs, return one case-insensitive regex that matches a name matching any of them."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.IGNORECASE)


_BUILTIN = _compile(BUILTIN_PATTERNS)


@functools.lru_cache(maxsize=32)
def _compile_extra(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # The config's globs are the same for the whole run: compile them once, not once per event.
    return _compile(patterns)


def is_ignored(name: str, extra_globs: Sequence[str] = ()) -> bool:
    """Given one path component, return True if it is junk that is never uploaded or moved.

    Junk is a hidden name (leading "."), a partial-download or temp name, a NAS/OS system file or
    folder, or a name matching one of ``extra_globs`` (the config's ``watch.ignore``; fnmatch syntax,
    case-insensitive, matched against the name only). ``name`` may hold surrogate escapes from
    undecodable bytes (``os.fsdecode``); they are compared as they are and never raise. An empty name
    is not ignored.
    """
    if not name:
        return False
    if name.startswith("."):
        return True
    if _BUILTIN.match(name):
        return True
    return bool(extra_globs) and _compile_extra(tuple(extra_globs)).match(name) is not None
