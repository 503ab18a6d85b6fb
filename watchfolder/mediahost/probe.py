"""The media host's self-test: stage a tiny file, fetch it through url_prefix as TikTok would, compare."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from urllib.parse import urlsplit

import requests


def probe(*, url_prefix: str, files_dir: Path, where: str, timeout: float = 10) -> tuple[bool, str]:
    """Stage a tiny file in files_dir, GET it through url_prefix without following redirects, compare, remove it.

    Also GET url_prefix itself: a server that lists the folder gives away the unguessable names.
    ``where`` names what should answer (the built-in server's address, or the folder), for messages.
    Return (True, what worked and any caveat) or (False, what went wrong and what to check).
    """
    content = f"watchfolder probe {secrets.token_hex(16)}\n".encode()
    name = secrets.token_urlsafe(24) + ".txt"
    path = Path(files_dir) / name
    with open(path, "xb") as f:
        f.write(content)
        os.fchmod(f.fileno(), 0o644)
    try:
        return _fetch_and_compare(url_prefix, url_prefix + name, content, where, timeout)
    finally:
        path.unlink(missing_ok=True)


def _fetch_and_compare(url_prefix: str, url: str, content: bytes, where: str,
                       timeout: float) -> tuple[bool, str]:
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False,
                                headers={"User-Agent": "watchfolder-probe"})
    except requests.RequestException as exc:
        return False, f"GET {url} failed ({type(exc).__name__}): nothing answered for {where}"
    if 300 <= response.status_code < 400:
        return False, (f"GET {url} answered {response.status_code} (a redirect to "
                       f"{response.headers.get('Location', '?')}): TikTok does not follow redirects")
    if response.status_code != 200:
        return False, f"GET {url} answered HTTP {response.status_code}: url_prefix does not reach {where}"
    if response.content != content:
        return False, f"GET {url} answered 200 with other bytes: url_prefix does not reach {where}"
    try:
        listing = requests.get(url_prefix, timeout=timeout, allow_redirects=False)
        if listing.status_code == 200 and url.rsplit("/", 1)[1] in listing.text:
            return False, (f"GET {url_prefix} lists the folder: anyone could find the staged photos; "
                           "turn off directory listing there")
    except requests.RequestException:
        pass  # the file itself was served; a failing folder URL lists nothing
    message = f"GET {url} returned the staged file"
    parts = urlsplit(url)
    if parts.scheme != "https" or _is_ip(parts.hostname or ""):
        message += "; TikTok only fetches https:// URLs on a verified domain, so production needs both"
    return True, message


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
