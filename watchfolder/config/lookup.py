"""Where the config file is: ``-c PATH``, then ``$WATCHFOLDER_CONFIG``, then the system file, then the user's.

The first two are taken as given (a missing file there is an error about that file); the last two are
used when they exist. When none applies, the error names every place looked, in order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from watchfolder.core.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/watchfolder/config.yaml")


def user_config(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/watchfolder/config.yaml``, by default ``~/.config/watchfolder/config.yaml``."""
    base = env.get("XDG_CONFIG_HOME", "").strip()
    if not base or not os.path.isabs(base):  # the XDG spec: a relative value is to be ignored
        home = env.get("HOME") or str(Path.home())
        base = os.path.join(home, ".config")
    return Path(base) / "watchfolder" / "config.yaml"


def find(path: str | os.PathLike[str] | None, env: Mapping[str, str],
         system: Path | None = None) -> str | os.PathLike[str]:
    """Given ``-c``'s value (None when not given) and the environment, return the config file to read;
    raise ConfigError naming every place looked when there is none. ``system`` replaces /etc's file (tests)."""
    system = SYSTEM_CONFIG if system is None else system
    if path is not None:
        return path
    if env.get("WATCHFOLDER_CONFIG"):
        return env["WATCHFOLDER_CONFIG"]
    user = user_config(env)
    for candidate in (system, user):
        if candidate.is_file():
            return candidate
    raise ConfigError("(no config)", [
        "no config file found; looked at, in order: -c PATH (not given), $WATCHFOLDER_CONFIG (not set), "
        f"{system} (absent), {user} (absent)"])
