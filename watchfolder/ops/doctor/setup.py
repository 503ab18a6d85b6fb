"""The config and the media folders: client secret, rate limits, defaults, root, each account's folders,
and captions TikTok will drop."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from pathlib import Path

from watchfolder import fsinfo
from watchfolder.config.settings import Settings
from watchfolder.core.model import Mode
from watchfolder.intake import intake
from watchfolder.ops.doctor.findings import FAIL, OK, WARN, Check

DOCUMENTED_LIMITS = {"init_per_minute": 6, "status_per_minute": 30, "creator_info_per_minute": 20}
ACCOUNT_FOLDERS = ("inbox", "processing", "done", "failed")
SECRET_SOURCES = {"file": "tiktok.client_secret_file", "env": "$WATCHFOLDER_CLIENT_SECRET",
                  "credentials": "the systemd credential client_secret"}


def config(settings: Settings) -> Iterator[Check]:
    yield Check("config", OK, f"{settings.path}: {len(settings.accounts)} account(s): "
                              f"{', '.join(f'{a.name} ({a.mode})' for a in settings.accounts)}")
    source = settings.tiktok.client_secret_source
    if source == "inline":
        yield Check("client_secret", WARN, "the client secret is written in the config file: move it to a file "
                    "readable only by the daemon (tiktok.client_secret_file, chmod 600), $WATCHFOLDER_CLIENT_SECRET, "
                    "or a systemd credential (LoadCredential=client_secret:...)")
    elif source == "none" or not settings.tiktok.client_secret:
        yield Check("client_secret", FAIL, "no client secret, so sign-ins can neither be made nor renewed: set "
                    "tiktok.client_secret_file, $WATCHFOLDER_CLIENT_SECRET or a systemd credential client_secret")
    else:
        yield Check("client_secret", OK, f"found in {SECRET_SOURCES.get(source, source)}")
    above = []
    for key, documented in DOCUMENTED_LIMITS.items():
        value = getattr(settings.tiktok, key)
        if value == 0:
            above.append(f"tiktok.{key} is 0 (no limit), which is only for the emulator: set {documented}")
        elif value > documented:
            above.append(f"tiktok.{key} is {value}, above TikTok's documented {documented} per minute per "
                         f"account, so TikTok will answer rate_limit_exceeded: set {documented} or less")
    yield Check("rate_limits", WARN, "; ".join(above)) if above else Check(
        "rate_limits", OK, "within TikTok's documented per-minute limits")
    for account in settings.accounts:
        if account.mode is Mode.INBOX and any(account.defaults.get(key) for key in ("title", "description")):
            yield Check(f"defaults:{account.name}", WARN, "a title in defaults is not sent: TikTok takes no caption "
                        "for drafts (mode: inbox); the creator writes it in the app. It is kept in the sidecar only, "
                        "so leave it out or use mode: direct")
        if account.mode is Mode.DIRECT and not account.defaults.get("privacy_level"):
            yield Check(f"defaults:{account.name}", WARN, "no privacy_level in defaults: every item then needs one "
                        "in its post file, or it fails (TikTok allows no default privacy)")


def writable(path: Path) -> bool:
    return os.access(path, os.R_OK | os.W_OK | os.X_OK)


def folders(settings: Settings) -> Iterator[Check]:
    root, user = settings.root, getpass.getuser()
    if not root.is_dir():
        yield Check("root", FAIL, f"{root} does not exist or is not a folder. Is the share mounted? watchfolder "
                    "never creates root: mount it, or fix root in the config")
        return
    if not writable(root):
        yield Check("root", FAIL, f"{root} is not writable for {user}: give that user read/write access "
                    f"(chown {user} {root}, or an ACL: setfacl -m u:{user}:rwx {root})")
        return
    yield Check("root", OK, f"{root} exists and is writable for {user}")
    for account in settings.accounts:
        base = root / account.name
        present = [base / sub for sub in ACCOUNT_FOLDERS if (base / sub).exists()]
        blocked = [str(path) for path in [base, *present] if path.exists() and not writable(path)]
        devices = {os.stat(path).st_dev for path in present}
        if blocked:
            yield Check(f"folders:{account.name}", FAIL, f"not writable for {user}: {', '.join(blocked)}; give "
                        f"that user read/write access (chown, chmod u+rwx, or setfacl -m u:{user}:rwx)")
        elif len(devices) > 1:
            yield Check(f"folders:{account.name}", WARN, f"{account.name}'s folders are on different filesystems "
                        f"({_mounts_of(present)}): a move between them is a copy of the file, then the original "
                        "is removed (slow for big videos); keep them on one filesystem for instant moves")
        else:
            missing = [sub for sub in ACCOUNT_FOLDERS if not (base / sub).exists()]
            note = f"; {', '.join(missing)} will be created at start" if missing else ""
            yield Check(f"folders:{account.name}", OK, f"{base} is usable{note}")


def _mounts_of(folders: list[Path]) -> str:
    """Which folder is on which mount: "inbox, done on /srv; processing on /mnt/scratch"."""
    mounts = fsinfo.read_mounts()
    where: dict[str, list[str]] = {}
    for folder in folders:
        mount = fsinfo.mount_for(folder, mounts)
        point = mount.mount_point if mount is not None else f"device {os.stat(folder).st_dev}"
        where.setdefault(point, []).append(folder.name)
    return "; ".join(f"{', '.join(names)} on {point}" for point, names in where.items())


def captions(settings: Settings) -> Iterator[Check]:
    """Videos waiting in an inbox-mode account's inbox whose settings file gives a caption TikTok will drop."""
    if settings.root.is_dir():
        for line in intake.inbox_caption_warnings(settings):
            yield Check(f"captions:{line.split(':', 1)[0]}", WARN, line)
