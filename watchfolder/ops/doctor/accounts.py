"""Each account's sign-in and scopes, and what TikTok says the account may do."""

from __future__ import annotations

from collections.abc import Iterator

from watchfolder.config.settings import AccountSettings, Settings
from watchfolder.core.errors import AuthError, TikTokError
from watchfolder.core.model import SCOPE_FOR_MODE, Mode
from watchfolder.ops.doctor.findings import FAIL, OK, WARN, Check, utc
from watchfolder.tiktok.client import TikTokClient
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import FROM_COMMAND_LINE, Tokens, TokenStore

CANNOT_POST_NOW = ("spam_risk_too_many_posts", "reached_active_user_cap", "rate_limit_exceeded")


def sign_in(settings: Settings, account: AccountSettings, now: float, offline: bool,
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
    until = utc(tokens.refresh_expires_at)
    if days <= 0:
        yield Check(f"tokens:{name}", FAIL, f"the sign-in expired on {until}: run {login}")
        return
    exposed = ("; the tokens were imported with --access-token/--refresh-token, which every local user could read "
               "while the command ran and the shell history keeps: pipe them in instead "
               f"(watchfolder auth import {name} < tokens.json) or run {login}"
               if tokens.source == FROM_COMMAND_LINE else "")
    if days <= settings.tiktok.refresh_warn_days:
        yield Check(f"tokens:{name}", WARN, f"the sign-in expires in {days:.1f} days ({until}): renew it soon "
                    f"with {login}{exposed}")
    else:
        yield Check(f"tokens:{name}", WARN if exposed else OK,
                    f"signed in until {until}; the access token is renewed automatically{exposed}")
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
