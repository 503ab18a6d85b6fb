"""Creators, their tokens and authorization codes (reference §6). All methods expect the caller to hold
the emulator's lock; the emulator wraps them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from watchfolder.emulator.config import EmulatorConfig

KNOWN_SCOPES = frozenset({
    "user.info.basic", "user.info.profile", "user.info.stats", "video.list", "video.upload", "video.publish",
})
PUBLIC_OPTIONS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
PRIVATE_OPTIONS = ("FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")


@dataclass
class User:
    """A creator. ``access_token`` and ``refresh_token`` are the latest ones issued to it."""

    name: str
    open_id: str
    union_id: str
    scopes: tuple[str, ...]
    private_account: bool
    privacy_level_options: tuple[str, ...]
    max_video_post_duration_sec: int
    access_ttl: int
    refresh_ttl: int
    banned: bool = False
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    access_token: str = ""
    refresh_token: str = ""

    @property
    def display_name(self) -> str:
        return self.name.title()


@dataclass
class AccessToken:
    token: str
    open_id: str
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    open_id: str
    scopes: tuple[str, ...]
    expires_at: float
    state: str = "valid"  # "valid" | "rotated" | "revoked"


@dataclass
class AuthCode:
    code: str
    open_id: str
    redirect_uri: str
    code_challenge: str | None
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False


@dataclass
class Accounts:
    """The users and every token ever issued, by value."""

    config: EmulatorConfig
    users: dict[str, User] = field(default_factory=dict)  # by open_id
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)

    def add_user(self, name: str, scopes: Iterable[str], now: float, *, private_account: bool = False,
                 privacy_level_options: Sequence[str] | None = None, max_video_post_duration_sec: int = 600,
                 access_ttl: int | None = None, refresh_ttl: int | None = None) -> User:
        """Create a creator holding a fresh token pair for ``scopes`` and return it.

        Raise ValueError for an unknown scope or a name already taken.
        """
        scopes = tuple(scopes)
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}")
        if self.by_name(name) is not None:
            raise ValueError(f"a user named {name!r} exists already")
        options = tuple(privacy_level_options or (PRIVATE_OPTIONS if private_account else PUBLIC_OPTIONS))
        # TikTok's open_ids are opaque and often begin with "-"; so do ours, to keep clients honest.
        user = User(
            name=name, open_id="-000" + secrets.token_urlsafe(24), union_id=secrets.token_hex(16),
            scopes=scopes, private_account=private_account, privacy_level_options=options,
            max_video_post_duration_sec=max_video_post_duration_sec,
            access_ttl=self.config.access_ttl if access_ttl is None else access_ttl,
            refresh_ttl=self.config.refresh_ttl if refresh_ttl is None else refresh_ttl,
            # TikTok forces duet and stitch off for private accounts (reference §1.1).
            duet_disabled=private_account, stitch_disabled=private_account,
        )
        self.users[user.open_id] = user
        self.issue(user, scopes, now)
        return user

    def by_name(self, name: str) -> User | None:
        return next((user for user in self.users.values() if user.name == name), None)

    def issue(self, user: User, scopes: Sequence[str], now: float,
              keep_refresh: RefreshToken | None = None) -> tuple[AccessToken, RefreshToken]:
        """Issue a new access token to ``user``, and a new refresh token unless ``keep_refresh`` is
        given (a refresh without rotation); return both."""
        access = AccessToken("act." + secrets.token_urlsafe(30), user.open_id, tuple(scopes),
                             now + user.access_ttl)
        refresh = keep_refresh or RefreshToken("rft." + secrets.token_urlsafe(30), user.open_id,
                                               tuple(scopes), now + user.refresh_ttl)
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        user.access_token, user.refresh_token = access.token, refresh.token
        return access, refresh

    def valid_access(self, token: str, now: float) -> AccessToken | None:
        """Return the access token if it is known, unexpired and not revoked, else None."""
        access = self.access.get(token)
        if access is None or access.revoked or now >= access.expires_at:
            return None
        return access

    def expire_access(self, token_or_open_id: str, now: float) -> int:
        """Make one access token, or every access token of one open_id, expired; return how many."""
        targets = [t for t in self.access.values() if token_or_open_id in (t.token, t.open_id)]
        for access in targets:
            access.expires_at = min(access.expires_at, now)
        return len(targets)

    def revoke_user(self, open_id: str) -> None:
        """Revoke every access and refresh token of ``open_id`` (the app's grant is gone)."""
        for access in self.access.values():
            if access.open_id == open_id:
                access.revoked = True
        for refresh in self.refresh.values():
            if refresh.open_id == open_id:
                refresh.state = "revoked"

    def new_code(self, user: User, redirect_uri: str, challenge: str | None, scopes: Sequence[str],
                 now: float) -> str:
        """Issue a one-time authorization code and return it.

        Real codes carry ``*`` and ``!``, which a client must URL-decode; ours do too.
        """
        code = secrets.token_urlsafe(40) + "*0!" + str(secrets.randbelow(10**4))
        self.codes[code] = AuthCode(code, user.open_id, redirect_uri, challenge, tuple(scopes),
                                    now + self.config.auth_code_ttl)
        return code


def pkce_matches(verifier: str, challenge: str) -> bool:
    """Say whether ``verifier`` hashes to ``challenge`` TikTok's way: lowercase hex SHA-256, not base64url."""
    if not 43 <= len(verifier) <= 128:
        return False
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    if not set(verifier) <= allowed:
        return False
    return secrets.compare_digest(hashlib.sha256(verifier.encode("ascii")).hexdigest(), challenge)


def short_hash(token: str) -> str:
    """Return a short, non-reversible tag of a token, for records that must not hold the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
