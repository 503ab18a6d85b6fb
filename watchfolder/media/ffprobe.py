"""The one optional outside tool: ffprobe, asked for a duration only when the headers do not give one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def video_duration_ffprobe(path: Path, *, timeout: float = 30, pass_fds: tuple[int, ...] = ()) -> float | None:
    """Given a video, return its duration in seconds from ffprobe; None if ffprobe is absent or cannot tell.

    ``pass_fds``: descriptors ffprobe inherits, so ``path`` may be ``/proc/self/fd/N`` of an open file.
    """
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", f"file:{path}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                              pass_fds=pass_fds)
        return float(done.stdout.strip()) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
