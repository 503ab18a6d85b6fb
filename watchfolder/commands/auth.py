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
from watchfolder.config.settings import Settings
from watchfolder.core.errors import UsageError
from watchfolder.core.model import Mode
from watchfolder.tiktok import authflow
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import Tokens, TokenStore


def _oauth(settings: Settings) -> OAuthClient:
    return OAuthClient(api_base_url=settings.tiktok.api_base_url, client_key=settings.tiktok.client_key,
                       client_secret=settings.tiktok.client_secret, timeout=settings.tiktok.timeout_seconds)


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def do_import(settings: Settings, args: argparse.Namespace, now: float) -> int:
    account = settings.account(args.account)
    scopes = tuple(s for s in args.scope.replace(" ", ",").split(",") if s)
    store = TokenStore(settings.state_dir)
    store.check_permissions()
    store.save(Tokens(account=account.name, open_id=args.open_id, access_token=args.access_token,
                      access_expires_at=now + args.expires_in, refresh_token=args.refresh_token,
                      refresh_expires_at=now + args.refresh_expires_in, scopes=scopes, updated_at=now))
    print(f"tokens stored for {account.name} (access until {_when(now + args.expires_in)}, "
          f"refresh until {_when(now + args.refresh_expires_in)})")
    return 0


def do_list(settings: Settings, as_json: bool, now: float) -> int:
    store = TokenStore(settings.state_dir)
    rows: list[dict[str, Any]] = []
    for account in settings.accounts:
        tokens = store.load(account.name)
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
