"""``watchfolder check`` as a doctor: every check, each ending in ok, warn or fail with how to fix it.

Nothing here starts the daemon, renews a token or writes to the media tree: the checks read the
config, the folders, the state directory, the mount table and the inotify limits, and (unless
offline) ask TikTok what each signed-in account may do, fetch a probe file through the media host's
URL and compare clocks with TikTok's. A question that cannot be answered (no network) is a
warning, never a crash. No message carries a token or the client secret.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import errno
import getpass
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from watchfolder import fsinfo
from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.errors import AuthError, TikTokError, WatchfolderError
from watchfolder.core.model import SCOPE_FOR_MODE, Mode
from watchfolder.intake import intake
from watchfolder.mediahost.host import MediaHost
from watchfolder.ops import report
from watchfolder.store import statelock
from watchfolder.store.store import DB_NAME, Store
from watchfolder.tiktok.client import TikTokClient
from watchfolder.tiktok.oauth import API_BASE_URL, OAuthClient
from watchfolder.tiktok.tokens import Tokens, TokenStore

OK, WARN, FAIL = "ok", "warn", "fail"
DOCUMENTED_LIMITS = {"init_per_minute": 6, "status_per_minute": 30, "creator_info_per_minute": 20}
CLOCK_SKEW_SECONDS = 60.0
ACCOUNT_FOLDERS = ("inbox", "processing", "done", "failed")
SECRET_SOURCES = {"file": "tiktok.client_secret_file", "env": "$WATCHFOLDER_CLIENT_SECRET",
                  "credentials": "the systemd credential client_secret"}
CANNOT_POST_NOW = ("spam_risk_too_many_posts", "reached_active_user_cap", "rate_limit_exceeded")


@dataclasses.dataclass(frozen=True)
class Check:
    """One finding: a stable ``name`` for scripts, ``status`` ok | warn | fail, a sentence with the fix."""

    name: str
    status: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}


def run(settings: Settings, *, now: float, offline: bool = False, mounts: Sequence[fsinfo.Mount] | None = None,
        inotify_limits: dict[str, int | None] | None = None, timeout: float = 10.0) -> list[Check]:
    """Given loaded settings and the time, return every check in reading order.

    ``mounts`` and ``inotify_limits`` default to this machine's; ``offline`` skips TikTok, the media
    host's URL and the clock comparison.
    """
    table = list(fsinfo.read_mounts() if mounts is None else mounts)
    checks = [*_config(settings), *_folders(settings), *_captions(settings), *_state(settings, table, now),
              *_watch(settings, table, inotify_limits)]
    for account in settings.accounts:
        checks += _account(settings, account, now, offline, timeout)
    checks += _media_host(settings, offline, timeout)
    checks.append(_clock(settings, now, offline, timeout))
    return checks


# ---- the config ---------------------------------------------------------------------------------------------

def _config(settings: Settings) -> Iterator[Check]:
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


# ---- folders, state, watching -----------------------------------------------------------------------------

def _writable(path: Path) -> bool:
    return os.access(path, os.R_OK | os.W_OK | os.X_OK)


def _folders(settings: Settings) -> Iterator[Check]:
    root, user = settings.root, getpass.getuser()
    if not root.is_dir():
        yield Check("root", FAIL, f"{root} does not exist or is not a folder. Is the share mounted? watchfolder "
                    "never creates root: mount it, or fix root in the config")
        return
    if not _writable(root):
        yield Check("root", FAIL, f"{root} is not writable for {user}: give that user read/write access "
                    f"(chown {user} {root}, or an ACL: setfacl -m u:{user}:rwx {root})")
        return
    yield Check("root", OK, f"{root} exists and is writable for {user}")
    for account in settings.accounts:
        base = root / account.name
        present = [base / sub for sub in ACCOUNT_FOLDERS if (base / sub).exists()]
        blocked = [str(path) for path in [base, *present] if path.exists() and not _writable(path)]
        devices = {os.stat(path).st_dev for path in present}
        if blocked:
            yield Check(f"folders:{account.name}", FAIL, f"not writable for {user}: {', '.join(blocked)}; give "
                        f"that user read/write access (chown, chmod u+rwx, or setfacl -m u:{user}:rwx)")
        elif len(devices) > 1:
            yield Check(f"folders:{account.name}", FAIL, f"{account.name}'s inbox, processing, done and failed "
                        "are on different filesystems; moves between them must be renames: keep them on one")
        else:
            missing = [sub for sub in ACCOUNT_FOLDERS if not (base / sub).exists()]
            note = f"; {', '.join(missing)} will be created at start" if missing else ""
            yield Check(f"folders:{account.name}", OK, f"{base} is usable{note}")


def _captions(settings: Settings) -> Iterator[Check]:
    """Videos waiting in an inbox-mode account's inbox whose settings file gives a caption TikTok will drop."""
    if settings.root.is_dir():
        for line in intake.inbox_caption_warnings(settings):
            yield Check(f"captions:{line.split(':', 1)[0]}", WARN, line)


def _state(settings: Settings, mounts: Sequence[fsinfo.Mount], now: float) -> Iterator[Check]:
    state_dir = settings.state_dir
    where = state_dir if state_dir.exists() else state_dir.parent
    if not state_dir.exists() and not where.is_dir():
        yield Check("state_dir", FAIL, f"{state_dir}: its parent folder does not exist; create it or fix state_dir")
        return
    if not _writable(where):
        yield Check("state_dir", FAIL, f"{where} is not writable for {getpass.getuser()}: the state and tokens live "
                    "there; give the daemon's user access, or choose another state_dir")
        return
    try:
        kind = statelock.refuse_network_state(state_dir, allowed=settings.allow_network_state_dir, mounts=mounts)
    except WatchfolderError as exc:
        yield Check("state_dir", FAIL, str(exc))
        return
    if kind is not None and fsinfo.is_network(kind):
        yield Check("state_dir", WARN, f"{state_dir} is on a network filesystem ({kind}), allowed by "
                    "allow_network_state_dir: SQLite locking is unreliable there; prefer a local disk")
    else:
        fs = f" on {kind}" if kind else ""
        yield Check("state_dir", OK, f"{state_dir}{fs}, a local disk" + ("" if state_dir.exists() else
                                                                       " (created at the first start)"))
    tokens_dir = TokenStore(state_dir).directory
    loose = [p for p in [tokens_dir, *sorted(tokens_dir.glob("*.json"))] if p.exists()
             and stat.S_IMODE(os.stat(p).st_mode) & 0o077]
    if loose:
        yield Check("tokens_dir", FAIL, f"readable by group or others: {', '.join(map(str, loose))}; fix with: "
                    f"chmod 700 {tokens_dir}; chmod 600 {tokens_dir}/*.json")
    if (state_dir / DB_NAME).exists():
        yield _database(settings, now)


def _database(settings: Settings, now: float) -> Check:
    try:
        store = Store(settings.state_dir, readonly=True)
    except WatchfolderError as exc:
        return Check("database", FAIL, str(exc))
    try:
        verdict = str(store.conn.execute("PRAGMA quick_check").fetchone()[0])
        live = store.runtime("daemon")
    except Exception as exc:  # noqa: BLE001 - sqlite3 errors of every kind mean the same here
        return Check("database", FAIL, f"the state database cannot be read: {exc}")
    finally:
        store.close()
    if verdict != "ok":
        return Check("database", FAIL, f"the state database is damaged ({verdict}): stop the daemon and restore "
                     f"{settings.state_dir / DB_NAME} from a backup")
    running = live is not None and now - live[1] < report.HEARTBEAT_STALE
    daemon = f"a daemon is running (pid {live[0].get('pid')})" if running and live else "no daemon is running"
    return Check("database", OK, f"the state database is sound; {daemon}")


def _watch(settings: Settings, mounts: Sequence[fsinfo.Mount],
           limits: dict[str, int | None] | None) -> Iterator[Check]:
    inotify_inboxes = []
    for account in settings.accounts:
        inbox = settings.root / account.name / "inbox"
        method, reason = fsinfo.choose_observer(settings.watch.observer, inbox, mounts)
        risky = method == "inotify" and "only be found by the periodic rescan" in reason
        yield Check(f"watch:{account.name}", WARN if risky else OK, f"{method}: {reason}" + (
            "; set watch.observer: auto or polling" if risky else ""))
        if method == "inotify":
            inotify_inboxes.append(inbox)
    if not inotify_inboxes:
        return
    limits = fsinfo.inotify_limits() if limits is None else limits
    folders = sum(1 + sum(len(dirs) for _, dirs, _ in os.walk(inbox)) for inbox in inotify_inboxes)
    watches, instances = limits.get("max_user_watches"), limits.get("max_user_instances")
    if watches is None or instances is None:
        yield Check("inotify", WARN, "the inotify limits cannot be read (/proc/sys/fs/inotify); if watching fails, "
                    "the inbox is polled instead")
    elif instances < len(inotify_inboxes) + 8:  # other programs of the same user need instances too
        yield Check("inotify", WARN, fsinfo.inotify_limit_advice(errno.EMFILE, limits))
    elif watches < folders + 1024:
        yield Check("inotify", WARN, fsinfo.inotify_limit_advice(errno.ENOSPC, limits))
    else:
        yield Check("inotify", OK, f"max_user_watches {watches}, max_user_instances {instances}: enough for "
                    f"{folders} watched folder(s) in {len(inotify_inboxes)} inbox(es)")


# ---- accounts and TikTok ----------------------------------------------------------------------------------

def _account(settings: Settings, account: AccountSettings, now: float, offline: bool,
             timeout: float) -> Iterator[Check]:
    name, login = account.name, f"watchfolder auth login {account.name}"
    try:
        tokens = TokenStore(settings.state_dir).load(name) if settings.state_dir.exists() else None
    except AuthError as exc:
        yield Check(f"tokens:{name}", FAIL, exc.message)
        return
    if tokens is None:
        yield Check(f"tokens:{name}", FAIL, f"not signed in: run {login}")
        return
    days = (tokens.refresh_expires_at - now) / 86400
    until = _utc(tokens.refresh_expires_at)
    if days <= 0:
        yield Check(f"tokens:{name}", FAIL, f"the sign-in expired on {until}: run {login}")
        return
    if days <= settings.tiktok.refresh_warn_days:
        yield Check(f"tokens:{name}", WARN, f"the sign-in expires in {days:.1f} days ({until}): renew it soon "
                    f"with {login}")
    else:
        yield Check(f"tokens:{name}", OK, f"signed in until {until}; the access token is renewed automatically")
    needed = SCOPE_FOR_MODE[account.mode]
    if not tokens.scopes:  # imported without --scope: not none, just not known yet
        yield Check(f"scopes:{name}", OK, f"unknown — verified at the first upload (mode {account.mode} needs "
                    f"{needed}; tokens imported without --scope)")
    elif needed not in tokens.scopes:
        yield Check(f"scopes:{name}", FAIL, f"mode {account.mode} needs the scope {needed}, but the sign-in granted "
                    f"{', '.join(tokens.scopes) or 'none'}: run {login} and allow posting")
        return
    else:
        yield Check(f"scopes:{name}", OK, f"{needed} granted, as mode {account.mode} needs")
    if not offline:
        yield _ask_tiktok(settings, account, tokens, now, timeout)


def _ask_tiktok(settings: Settings, account: AccountSettings, tokens: Tokens, now: float, timeout: float) -> Check:
    """What TikTok says this account may do, in plain words (creator_info; user/info for drafts-only sign-ins)."""
    name = f"tiktok:{account.name}"
    if tokens.access_expires_at <= now:
        return Check(name, WARN, "not asked: the access token has expired, and check never renews tokens (the "
                     "running daemon does, before its next call); run check again once the daemon has run")
    drafts = ("drafts only: each video lands in the creator's TikTok inbox, where they pick the caption, sound and "
              "privacy and post it (at most 5 drafts may wait in 24 hours)")
    try:
        # Unknown scopes (an import without --scope): ask what the account's mode relies on.
        if "video.publish" not in tokens.scopes and (tokens.scopes or account.mode is Mode.INBOX):
            oauth = OAuthClient(api_base_url=settings.tiktok.api_base_url, client_key=settings.tiktok.client_key,
                                client_secret=None, timeout=timeout)
            who = oauth.user_info(tokens.access_token).get("display_name") or account.name
            return Check(name, OK, f"TikTok accepts the sign-in of {who}; {drafts}")
        client = TikTokClient(settings.tiktok.api_base_url, timeout=timeout)
        try:
            info = client.creator_info(tokens.access_token)
        finally:
            client.close()
    except TikTokError as exc:
        return _refusal(name, account, exc)
    who, options = info.nickname or account.name, list(info.privacy_level_options)
    if account.mode is Mode.INBOX:
        return Check(name, OK, f"{who}: {drafts}")
    wanted = account.defaults.get("privacy_level")
    if wanted and wanted not in options:
        return Check(name, FAIL, f"defaults.privacy_level {wanted} is not offered to {who}: set one of "
                     f"{', '.join(options) or 'none'}")
    limit = f"; videos up to {info.max_video_post_duration_sec} s"
    if options == ["SELF_ONLY"]:
        return Check(name, WARN, f"private only: TikTok offers {who} nothing but SELF_ONLY, as it does for an app "
                     "that has not passed its audit; posts will be visible to the creator alone (mode: inbox lets "
                     f"the creator publish each draft publicly from the app){limit}")
    if "PUBLIC_TO_EVERYONE" in options:
        return Check(name, OK, f"public posts possible for {who} ({', '.join(options)}){limit}. If the app has not "
                     "passed TikTok's audit, direct posts to this public account fail "
                     "(unaudited_client_can_only_post_to_private_accounts): make it private or use mode: inbox")
    return Check(name, OK, f"{who} is a private account: posts may be {', '.join(options)}{limit}; an app that "
                 "has not passed TikTok's audit may post SELF_ONLY only")


def _refusal(name: str, account: AccountSettings, exc: TikTokError) -> Check:
    advice = exc.advice or exc.message
    if exc.code in CANNOT_POST_NOW:
        return Check(name, WARN, f"TikTok says {account.name} cannot post right now ({exc.code}): {advice}")
    if exc.code in ("network_error", "bad_response") or (exc.http_status or 0) >= 500:
        return Check(name, WARN, f"could not ask TikTok ({exc.code}): {advice}")
    return Check(name, FAIL, f"TikTok refused ({exc.code}): {advice}")


# ---- media host and clock ---------------------------------------------------------------------------------

def _media_host(settings: Settings, offline: bool, timeout: float) -> Iterator[Check]:
    host = settings.media_host
    if not host.url_prefix:
        return
    if offline:
        yield Check("media_host", OK, f"{host.url_prefix} not probed (--offline)")
        return
    # The daemon's own staging folder when it exists (a running daemon serves it), else a temporary one.
    temporary = None if settings.state_dir.is_dir() else tempfile.mkdtemp(prefix="watchfolder-check-")
    staging = Path(temporary) / "staging" if temporary else settings.state_dir / "staging"
    try:
        media = MediaHost(url_prefix=host.url_prefix, staging_dir=staging, serve=host.serve,
                          publish_dir=host.publish_dir)
        try:
            media.start()
        except OSError:
            pass  # the port is taken, most likely by the running daemon, whose server then answers the probe
        try:
            reachable, message = media.probe(timeout=timeout)
        finally:
            media.stop()
    except (OSError, ValueError) as exc:
        reachable, message = False, f"cannot stage the probe file: {exc}"
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    if not reachable:
        yield Check("media_host", FAIL, f"{message}. TikTok fetches photos (and pull_from_url videos) through "
                    "url_prefix: check the proxy or web server in front of it")
    elif "production needs" in message and settings.tiktok.api_base_url == API_BASE_URL:
        yield Check("media_host", WARN, message)
    else:
        yield Check("media_host", OK, message)


def _clock(settings: Settings, now: float, offline: bool, timeout: float) -> Check:
    year = datetime.datetime.fromtimestamp(now, datetime.UTC).year
    if year < 2024:
        return Check("clock", FAIL, f"this machine's clock says {_utc(now)}: set the time (timedatectl set-ntp true)")
    if offline:
        return Check("clock", OK, f"{_utc(now)} (not compared with TikTok: --offline)")
    host = urlsplit(settings.tiktok.api_base_url).netloc
    try:
        answer: Any = requests.head(settings.tiktok.api_base_url + "/", timeout=timeout, allow_redirects=False)
        theirs = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    except (requests.RequestException, KeyError, TypeError, ValueError) as exc:
        return Check("clock", WARN, f"could not compare the clock with {host} ({type(exc).__name__})")
    skew = now - theirs
    if abs(skew) > CLOCK_SKEW_SECONDS:
        return Check("clock", WARN, f"this machine's clock is {skew:+.0f} s off {host}'s; token and upload-URL "
                     "lifetimes are judged by TikTok's clock: turn on time sync (timedatectl set-ntp true)")
    return Check("clock", OK, f"within {abs(skew):.0f} s of {host}")


def _utc(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
