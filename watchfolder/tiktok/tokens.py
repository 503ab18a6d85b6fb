"""Per-account OAuth tokens: a private on-disk store, and a manager that keeps them fresh.

Files live in ``<state_dir>/tokens/<account>.json`` (directory 0700, files 0600), each written
whole (temp file, fsync, rename, fsync of the directory). TikTok rotates refresh tokens and a
rotated one must never be sent again (that can void the whole grant), so the manager refreshes
one account at a time and commits the new refresh token before anyone uses the new access token.
Across processes, ``tokens/<account>.lock`` (flock) keeps a renewal and a new sign-in from overwriting
each other. (Over 300 lines: the file format, its lock and the renewal that relies on both.)
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from watchfolder import logs
from watchfolder.core import accountname
from watchfolder.core.errors import AuthError, TikTokError, UsageError, WatchfolderError
from watchfolder.core.model import Action
from watchfolder.tiktok.oauth import OAuthClient, TokenGrant

MAX_TOKEN_FILE = 64 * 1024   # a token file is a few hundred bytes; anything much bigger is not one
FROM_COMMAND_LINE = "command_line"   # Tokens.source of `auth import --access-token …` (check warns)
Identity = tuple[int, int, int]    # (inode, mtime_ns, size) of a token file: a save always changes it


def sign_in_hint(account: str) -> str:
    """Return the command that fixes any token problem for ``account``."""
    return f"sign in with: watchfolder auth login {account}"


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Tokens:
    """One account's grant. Times are epoch seconds; ``repr`` never shows either token."""

    account: str
    open_id: str
    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float
    scopes: tuple[str, ...]
    updated_at: float
    source: str = ""   # how they came: "" (a sign-in or a renewal) or FROM_COMMAND_LINE

    def __repr__(self) -> str:
        return (
            f"Tokens(account={self.account!r}, open_id={self.open_id!r}, access_token='***', "
            f"access_expires_at={_utc(self.access_expires_at)}, refresh_token='***', "
            f"refresh_expires_at={_utc(self.refresh_expires_at)}, scopes={self.scopes!r})"
        )

    @classmethod
    def from_grant(cls, account: str, grant: TokenGrant, *, now: float) -> Tokens:
        """Given a token answer for ``account``, return the Tokens to store."""
        return cls(account, grant.open_id, grant.access_token, grant.access_expires_at, grant.refresh_token,
                   grant.refresh_expires_at, grant.scopes, updated_at=now)


class TokenStore:
    """Reads and writes token files under ``state_dir/tokens``; safe to share between threads."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.directory = self.state_dir / "tokens"

    def check_permissions(self) -> None:
        """Make sure the token directory exists and nobody but the owner can get at it.

        Create ``state_dir`` and ``state_dir/tokens`` (0700) when missing. Raise
        WatchfolderError naming the path, its mode and the chmod commands that fix it if the
        directory or a token file has any group or other permission bit.
        """
        self._ensure_directory()
        problems = []
        for path in [self.directory, *sorted(self.directory.glob("*.json"))]:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                problems.append(f"{path} is readable by group/others (mode {mode:04o})")
        if problems:
            raise WatchfolderError(
                f"{'; '.join(problems)}; fix with: chmod 700 {self.directory}; chmod 600 {self.directory}/*.json"
            )

    def load(self, account: str) -> Tokens | None:
        """Return the stored tokens of ``account``, or None if it never signed in.

        Raise AuthError (code ``tokens_unreadable``) if the file exists but cannot be used: unreadable,
        not UTF-8 JSON, a key missing or of the wrong type. The message names the file, never its content.
        """
        return self.read(account)[0]

    def read(self, account: str) -> tuple[Tokens | None, Identity | None]:
        """Return the tokens of ``account`` and the identity of the file they were read from (None, None
        when there is none), from one open file, so the two always agree. Raise as :meth:`load` does."""
        path = self._path(account)
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise AuthError(account, f"cannot read {path} ({exc.strerror}); {sign_in_hint(account)}",
                            code="tokens_unreadable") from None
        try:
            info = os.fstat(descriptor)
            raw = os.read(descriptor, MAX_TOKEN_FILE + 1) if stat.S_ISREG(info.st_mode) else b""
        except OSError as exc:
            raise AuthError(account, f"cannot read {path} ({exc.strerror}); {sign_in_hint(account)}",
                            code="tokens_unreadable") from None
        finally:
            os.close(descriptor)
        tokens = _parse(account, raw)
        if tokens is None:
            # Say what is wrong, never what the file holds.
            raise AuthError(account, f"{path} is damaged; {sign_in_hint(account)}", code="tokens_unreadable")
        logs.register_secret(tokens.access_token)
        logs.register_secret(tokens.refresh_token)
        return tokens, (info.st_ino, info.st_mtime_ns, info.st_size)

    def identity(self, account: str) -> Identity | None:
        """Return the identity of ``account``'s token file now (None when there is none); never raises."""
        try:
            info = os.stat(self._path(account), follow_symlinks=False)
        except (OSError, UsageError):
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def stamp(self, account: str) -> float | None:
        """Return when ``account``'s tokens were last written (their ``updated_at``), or None when there are
        none or they cannot be used; never raises. The daemon compares it to see that tokens came back."""
        try:
            tokens = self.load(account)
        except (AuthError, UsageError):
            return None
        return tokens.updated_at if tokens is not None else None

    @contextmanager
    def lock(self, account: str, *, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
        """Hold ``tokens/<account>.lock`` (flock, exclusive) for the block: one writer of an account's tokens at
        a time, across processes (the daemon's refresh, ``auth login``, ``import`` and ``logout``).

        ``on_wait`` is called once if another process holds the lock, before waiting for it.
        """
        self._path(account)   # the account name is checked before it names a file
        self._ensure_directory()
        path = self.directory / f"{account}.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                             0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)   # releases the lock; the file stays (removing it would race a waiter)

    def save(self, tokens: Tokens) -> None:
        """Write ``tokens`` so that a reader (or a crash) sees either the old file or the new one whole.

        The temp file is created 0600 (so the tokens are never readable by others, not even for a
        moment), written, fsynced, renamed over the old file, and the directory is fsynced.
        """
        logs.register_secret(tokens.access_token)
        logs.register_secret(tokens.refresh_token)
        self._ensure_directory()
        path = self._path(tokens.account)
        data = {"schema": 1, **dataclasses.asdict(tokens), "scopes": list(tokens.scopes)}
        payload = json.dumps(data, indent=2).encode("utf-8") + b"\n"
        temp = self.directory / f".{tokens.account}.{secrets.token_hex(4)}.tmp"
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            try:
                os.fchmod(descriptor, 0o600)  # exact mode whatever the umask
                os.write(descriptor, payload)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temp, path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        self._fsync_directory()

    def delete(self, account: str) -> bool:
        """Delete the tokens of ``account``; return whether there were any."""
        try:
            os.unlink(self._path(account))
        except FileNotFoundError:
            return False
        self._fsync_directory()
        return True

    def accounts(self) -> list[str]:
        """Return the names of the accounts with stored tokens, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(path.stem for path in self.directory.glob("*.json") if not path.name.startswith("."))

    def _path(self, account: str) -> Path:
        # Account names become file names: the config's own rule refuses anything that could leave the folder.
        problem = accountname.problem(account)
        if problem is not None:
            raise UsageError(f"{problem}: {account[:80]!r}")
        return self.directory / f"{account}.json"

    def _ensure_directory(self) -> None:
        for directory in (self.state_dir, self.directory):
            if not directory.exists():
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask

    def _fsync_directory(self) -> None:
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _parse(account: str, raw: bytes) -> Tokens | None:
    """Return the Tokens a token file's bytes describe, or None when they are not a whole, well-typed file."""
    if len(raw) > MAX_TOKEN_FILE:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:   # UnicodeDecodeError included
        return None
    if not isinstance(data, dict):
        return None
    texts = [data.get(key) for key in ("open_id", "access_token", "refresh_token")]
    times = [data.get(key) for key in ("access_expires_at", "refresh_expires_at", "updated_at")]
    scopes = data.get("scopes")
    if not all(isinstance(value, str) for value in texts) or not texts[1] or not texts[2]:
        return None
    if not all(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
               for value in times):
        return None
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        return None
    source = data.get("source")
    return Tokens(account, str(texts[0]), str(texts[1]), float(times[0]), str(texts[2]),  # type: ignore[arg-type]
                  float(times[1]), tuple(scopes), float(times[2]),  # type: ignore[arg-type]
                  source=source if isinstance(source, str) else "")


class TokenManager:
    """Hands out valid access tokens, refreshing them when needed; thread-safe.

    Only one refresh per account runs at a time (a lock per account). A refresh that TikTok
    refuses for good becomes an AuthError, which the daemon takes as "pause this account".
    """

    def __init__(self, store: TokenStore, oauth: OAuthClient, *, margin_seconds: float = 300,
                 clock: Callable[[], float] = time.time, log: logs.Logger | None = None) -> None:
        self.store = store
        self.oauth = oauth
        self.margin_seconds = margin_seconds
        self.clock = clock
        self.log = log if log is not None else logs.get_logger()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Tokens TikTok issued that could not be written to disk yet: the refresh token on disk
        # has been rotated away, so these are the only usable ones until a save succeeds.
        self._unsaved: dict[str, Tokens] = {}

    def access_token(self, account: str) -> str:
        """Return a usable access token for ``account``, refreshing it first if it expires within the margin.

        Raise AuthError (message ending with the sign-in command): code ``auth_required`` when
        there are no tokens, ``refresh_expired`` when the refresh token has expired,
        ``invalid_grant`` (or TikTok's code) when TikTok refused the refresh, ``scope_lost`` when
        the refresh came back without a scope the account had. Raise TikTokError (RETRY) when
        TikTok or the network failed for now.
        """
        if account not in self._unsaved:
            tokens = self._load(account)
            if tokens.access_expires_at - self.margin_seconds > self.clock():
                return tokens.access_token
        with self._lock(account), self.store.lock(account):
            # Another thread (or process) may have refreshed while this one waited for the lock.
            tokens, identity = self._current_locked(account)
            if tokens.access_expires_at - self.margin_seconds > self.clock():
                return tokens.access_token
            return self._refresh_locked(tokens, identity, reason="expiring")

    def refresh(self, account: str, *, rejected_token: str | None = None) -> str:
        """Refresh now (TikTok said ``access_token_invalid``) and return the new access token.

        If ``rejected_token`` is given and another thread has already replaced it, return the
        current token without a second refresh. Raise as :meth:`access_token` does.
        """
        with self._lock(account), self.store.lock(account):
            tokens, identity = self._current_locked(account)
            if rejected_token is not None and tokens.access_token != rejected_token:
                return tokens.access_token
            return self._refresh_locked(tokens, identity, reason="rejected")

    def expiring_soon(self, within_seconds: float) -> list[Tokens]:
        """Return the stored tokens whose refresh token expires within ``within_seconds``, soonest first."""
        limit = self.clock() + within_seconds
        found = []
        for account in self.store.accounts():
            try:
                tokens = self.store.load(account)
            except AuthError:
                continue  # damaged files are reported by load() itself where it matters
            if tokens is not None and tokens.refresh_expires_at <= limit:
                found.append(tokens)
        return sorted(found, key=lambda tokens: tokens.refresh_expires_at)

    def expiry_warnings(self, within_seconds: float) -> list[str]:
        """Log and return one sentence per account whose sign-in expires within ``within_seconds``."""
        now = self.clock()
        messages = []
        for tokens in self.expiring_soon(within_seconds):
            days = (tokens.refresh_expires_at - now) / 86400
            when = "has expired" if days <= 0 else f"expires in {days:.1f} days"
            messages.append(
                f"{tokens.account}: the TikTok sign-in {when} ({_utc(tokens.refresh_expires_at)}); "
                f"renew it: {sign_in_hint(tokens.account)}"
            )
            self.log.warning("refresh_token_expiring", account=tokens.account,
                             expires_at=_utc(tokens.refresh_expires_at))
        return messages

    def record_proven_scope(self, account: str, scope: str) -> bool:
        """TikTok accepted a call that needs ``scope``: if the account's scopes are unknown (tokens imported
        without ``--scope``), record it; return True when something was written. Known scopes stay as they are."""
        with self._lock(account), self.store.lock(account):
            tokens, _ = self._current_locked(account)
            if tokens.scopes:
                return False
            self._commit(dataclasses.replace(tokens, scopes=(scope,)))
        self.log.info("scopes_recorded", account=account, scopes=scope)
        return True

    # -- inside the per-account lock -------------------------------------------------------

    def _lock(self, account: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(account, threading.Lock())

    def _load(self, account: str) -> Tokens:
        tokens = self.store.load(account)
        if tokens is None:
            raise AuthError(account, f"no tokens for {account!r}: {sign_in_hint(account)}")
        return tokens

    def _current_locked(self, account: str) -> tuple[Tokens, Identity | None]:
        """Return the newest tokens of ``account`` and the identity of their file (None for tokens that
        were only in memory); call with the account's locks held."""
        unsaved = self._unsaved.get(account)
        if unsaved is not None:
            # Tokens from a refresh whose save failed: the refresh token on disk is void, so
            # nothing proceeds (and no refresh is sent) until these reach the disk.
            self._commit(unsaved)
            return unsaved, None
        tokens, identity = self.store.read(account)
        if tokens is None:
            raise AuthError(account, f"no tokens for {account!r}: {sign_in_hint(account)}")
        return tokens, identity

    def _refresh_locked(self, tokens: Tokens, identity: Identity | None, *, reason: str) -> str:
        account = tokens.account
        now = self.clock()
        if tokens.refresh_expires_at <= now:
            raise AuthError(
                account,
                f"the TikTok sign-in of {account!r} expired on {_utc(tokens.refresh_expires_at)}: "
                f"{sign_in_hint(account)}",
                code="refresh_expired",
            )
        try:
            grant = self.oauth.refresh(tokens.refresh_token, now=now)
        except TikTokError as exc:
            if exc.action is Action.REAUTH:
                self.log.warning("token_refresh_refused", account=account, code=exc.code, log_id=exc.log_id)
                raise AuthError(
                    account,
                    f"TikTok refused to renew the sign-in of {account!r} ({exc.code}): {sign_in_hint(account)}",
                    code=exc.code,
                ) from None
            raise
        except AuthError as exc:  # no client secret: say which account could not go on
            raise AuthError(account, exc.message, code=exc.code) from None
        if identity is not None and self.store.identity(account) != identity:
            # Someone replaced the file while TikTok answered (a writer that does not take the lock): that
            # is a newer sign-in, and this renewal of the grant it replaced is thrown away.
            self.log.warning("token_refresh_discarded", account=account,
                             reason="the tokens were replaced during the refresh; the new ones are kept")
            return self._load(account).access_token
        fresh = Tokens.from_grant(account, grant, now=now)
        if not grant.scopes:  # an answer without a scope list took nothing away
            fresh = dataclasses.replace(fresh, scopes=tokens.scopes)
        # The rotated refresh token is committed before the new access token leaves this method.
        self._commit(fresh)
        self.log.info("token_refreshed", account=account, reason=reason,
                      access_expires_at=_utc(fresh.access_expires_at),
                      refresh_expires_at=_utc(fresh.refresh_expires_at),
                      rotated=fresh.refresh_token != tokens.refresh_token)
        lost = [scope for scope in tokens.scopes if scope not in fresh.scopes]
        if lost:
            raise AuthError(
                account,
                f"TikTok no longer grants {', '.join(lost)} for {account!r}: {sign_in_hint(account)}",
                code="scope_lost",
            )
        return fresh.access_token

    def _commit(self, tokens: Tokens) -> None:
        """Save ``tokens``; if that fails, keep them in memory (the old refresh token is void) and re-raise."""
        try:
            self.store.save(tokens)
        except OSError as exc:
            self._unsaved[tokens.account] = tokens
            self.log.error("tokens_not_saved", account=tokens.account, error=exc.strerror)
            raise WatchfolderError(
                f"could not save the renewed tokens of {tokens.account!r} ({exc.strerror}); "
                "they are kept in memory until a save succeeds"
            ) from None
        self._unsaved.pop(tokens.account, None)
