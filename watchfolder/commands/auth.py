"""``watchfolder auth login|import|list|logout``: tokens in, tokens listed (never shown), tokens out."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import webbrowser
from typing import Any

from watchfolder import logs
from watchfolder.commands import tokeninput
from watchfolder.config.settings import Settings
from watchfolder.core.errors import AuthError, UsageError
from watchfolder.core.model import Mode
from watchfolder.tiktok import authflow
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import FROM_COMMAND_LINE, Tokens, TokenStore


def _oauth(settings: Settings) -> OAuthClient:
    return OAuthClient(api_base_url=settings.tiktok.api_base_url, client_key=settings.tiktok.client_key,
                       client_secret=settings.tiktok.client_secret, timeout=settings.tiktok.timeout_seconds)


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _read_input(args: argparse.Namespace) -> tokeninput.TokenInput:
    """The tokens to import: from --file, from the (deprecated) flags, or piped in on stdin."""
    flags = (getattr(args, "access_token", None), getattr(args, "refresh_token", None))
    if any(flags):
        if not all(flags):
            raise UsageError("watchfolder auth import: give both --access-token and --refresh-token, or neither "
                             "(and pipe the tokens in)")
        return tokeninput.TokenInput(access_token=str(flags[0]), refresh_token=str(flags[1]))
    if getattr(args, "file", None):
        try:
            with open(args.file, encoding="utf-8") as handle:
                return tokeninput.parse(handle.read(tokeninput.MAX_INPUT))
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"watchfolder auth import: cannot read {args.file}: {why}") from None
    if sys.stdin.isatty():
        print("Paste TikTok's token JSON (or access_token=… and refresh_token=… lines), then press Ctrl-D:",
              file=sys.stderr)
    return tokeninput.parse(sys.stdin.read(tokeninput.MAX_INPUT))


def do_import(settings: Settings, args: argparse.Namespace, now: float) -> int:
    account = settings.account(args.account)
    given = _read_input(args)
    logs.register_secret(given.access_token)
    logs.register_secret(given.refresh_token)
    on_command_line = bool(getattr(args, "access_token", None))
    if on_command_line:
        print(f"watchfolder: WARNING: tokens given as --access-token/--refresh-token are visible to every local "
              f"user (ps, /proc) while the command runs, and stay in your shell history; pipe them in instead: "
              f"watchfolder auth import {account.name} < tokens.json", file=sys.stderr)
    expires_in = args.expires_in if args.expires_in is not None else given.expires_in or 86400.0
    refresh_expires_in = (args.refresh_expires_in if args.refresh_expires_in is not None
                          else given.refresh_expires_in or 31536000.0)
    scopes = tokeninput.split_scopes(args.scope) if args.scope is not None else given.scopes or ()
    open_id = args.open_id if args.open_id is not None else given.open_id or ""
    store = TokenStore(settings.state_dir)
    store.check_permissions()
    tokens = Tokens(account=account.name, open_id=open_id, access_token=given.access_token,
                    access_expires_at=now + expires_in, refresh_token=given.refresh_token,
                    refresh_expires_at=now + refresh_expires_in, scopes=scopes, updated_at=now,
                    source=FROM_COMMAND_LINE if on_command_line else "")
    with store.lock(account.name, on_wait=lambda: _waiting(account.name)):
        store.save(tokens)
    print(f"tokens stored for {account.name} (access until {_when(now + expires_in)}, "
          f"refresh until {_when(now + refresh_expires_in)})")
    return 0


def _waiting(account: str) -> None:
    print(f"watchfolder: waiting for the running daemon to finish renewing the tokens of {account}…",
          file=sys.stderr, flush=True)


def do_list(settings: Settings, as_json: bool, now: float) -> int:
    store = TokenStore(settings.state_dir)
    rows: list[dict[str, Any]] = []
    for account in settings.accounts:
        try:
            tokens = store.load(account.name)
        except AuthError as exc:   # one damaged file is that account's line, not the whole command's failure
            rows.append({"account": account.name, "signed_in": False, "problem": exc.message})
            continue
        if tokens is None:
            rows.append({"account": account.name, "signed_in": False})
            continue
        rows.append({
            "account": account.name, "signed_in": True, "open_id": tokens.open_id,
            "scopes": list(tokens.scopes), "access_expires_at": _when(tokens.access_expires_at),
            "refresh_expires_at": _when(tokens.refresh_expires_at),
            "access_valid": tokens.access_expires_at > now, "refresh_valid": tokens.refresh_expires_at > now,
        })
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        if row.get("problem"):
            print(f"{row['account']}: {row['problem']}")
            continue
        if not row["signed_in"]:
            print(f"{row['account']}: not signed in (watchfolder auth login {row['account']})")
            continue
        refresh = "" if row["refresh_valid"] else " — EXPIRED: sign in again"
        scopes = ",".join(row["scopes"]) or "unknown (verified at the first upload)"
        print(f"{row['account']}: open_id {row['open_id'] or '-'}; scopes {scopes}; "
              f"access until {row['access_expires_at']}; refresh until {row['refresh_expires_at']}{refresh}")
    return 0


def main(settings: Settings, args: argparse.Namespace, *, now: float | None = None) -> int:
    logs.register_secret(settings.tiktok.client_secret)
    stamp = time.time() if now is None else now
    action = args.auth_command
    if action == "import":
        return do_import(settings, args, stamp)
    if action == "list":
        return do_list(settings, args.json, stamp)
    account = settings.account(args.account)
    store = TokenStore(settings.state_dir)
    if action == "login":
        store.check_permissions()
        browser = None if (args.no_browser or args.paste) else webbrowser.open
        authflow.login(oauth=_oauth(settings), store=store, account=account.name, mode=Mode(account.mode),
                       redirect_uri=settings.tiktok.redirect_uri, paste=args.paste or None, stdin=sys.stdin,
                       stdout=sys.stdout, open_browser=browser)
        return 0
    if action == "logout":
        removed = authflow.logout(oauth=_oauth(settings), store=store, account=account.name, stdout=sys.stdout)
        print(f"{account.name}: signed out" if removed else f"{account.name}: was not signed in")
        return 0
    raise UsageError(f"watchfolder auth: unknown action {action}")
