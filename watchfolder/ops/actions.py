"""The status page's actions (``metrics.actions: true``; off by default): retry a failed item, pause or resume
an account (what ``watchfolder retry``, ``pause`` and ``resume`` do).

Who may act: a POST must carry the page's CSRF token (a random value of this server process, in every form
it renders; another site cannot read it), and must come from this host (loopback) or, with
``metrics.password_file``, bring that password by HTTP basic auth. Anything else is refused with 403 and
changes nothing. With a password file, the page itself also asks other hosts for the password.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from watchfolder.config.settings import Settings
from watchfolder.core.errors import UsageError, WatchfolderError
from watchfolder.daemon import holds, retrying
from watchfolder.ops.page import esc
from watchfolder.store.store import Store

PATHS = ("/actions/retry", "/actions/pause", "/actions/resume")


@dataclass(frozen=True)
class Outcome:
    """What an action did: the HTTP status, one sentence for the person, the account it concerned (or "")."""

    status: int
    message: str
    account: str = ""


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


class Actions:
    """The token, the access rule and the actions for one config."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.metrics.actions
        self.token = secrets.token_urlsafe(32)

    def password_ok(self, authorization: str | None) -> bool:
        """True when ``authorization`` is HTTP basic auth with the configured password (any user name)."""
        password = self.settings.metrics.password
        if not password or not authorization or authorization[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
        return hmac.compare_digest(given.encode(), password.encode())

    def needs_login(self, client: str, authorization: str | None) -> bool:
        """With a password file, a request from another host without the password is asked for it (401)."""
        return bool(self.settings.metrics.password) and not is_loopback(client) \
            and not self.password_ok(authorization)

    def may_act(self, client: str, authorization: str | None) -> bool:
        return self.enabled and (is_loopback(client) or self.password_ok(authorization))

    def forms_for(self, rows: list[Mapping[str, object]], account: Mapping[str, object] | None = None) -> str:
        """The retry buttons of these failed items and, given its status row, the account's pause or resume
        button; nothing while actions are off."""
        if not self.enabled:
            return ""
        forms = []
        if account is not None:
            name = str(account["account"])
            if account.get("paused") or account.get("wait_until"):
                forms.append(self._form("resume", "account", name, f"Resume {name}"))
            if account.get("paused") != "user":
                forms.append(self._form("pause", "account", name, f"Pause {name}"))
        forms += [self._form("retry", "item", str(int(str(row["id"]))), f"Retry {row['name']}")
                  for row in rows if row.get("state") == "failed"]
        return "".join(forms)

    def _form(self, action: str, field: str, value: str, label: str) -> str:
        return (f'<form method="post" action="/actions/{action}"><input type="hidden" name="csrf" value="{self.token}">'
                f'<input type="hidden" name="{field}" value="{esc(value)}">'
                f'<button type="submit">{esc(label)}</button></form>')

    def post(self, path: str, body: bytes, client: str, authorization: str | None, now: float) -> Outcome:
        """Carry out the POST to ``path`` if it is allowed; say why not otherwise (403, nothing changed)."""
        if not self.enabled:
            return Outcome(403, "actions are off: set metrics.actions: true to use them")
        if not (is_loopback(client) or self.password_ok(authorization)):
            why = ("the password of metrics.password_file is needed from another host" if self.settings.metrics.password
                   else "actions are allowed only from this host (or set metrics.password_file)")
            return Outcome(403, f"refused: {why}")
        try:
            form = parse_qs(body.decode("utf-8"), max_num_fields=10, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return Outcome(400, "refused: the form could not be read")
        token = (form.get("csrf") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return Outcome(403, "refused: the form's token is missing or stale; reload the page and try again")
        if path == "/actions/retry":
            return self._retry((form.get("item") or [""])[0], now)
        if path in ("/actions/pause", "/actions/resume"):
            return self._hold(path.rsplit("/", 1)[1], (form.get("account") or [""])[0], now)
        return Outcome(404, "no such action")

    def _hold(self, action: str, account: str, now: float) -> Outcome:
        if account not in {a.name for a in self.settings.accounts}:
            return Outcome(400, "refused: no such account in the config")
        try:
            store = Store(self.settings.state_dir)
        except WatchfolderError as exc:
            return Outcome(503, f"the state database cannot be opened: {exc}")
        try:
            if action == "pause":
                holds.pause(store, account)
                return Outcome(200, f"{account}: paused; nothing new starts for it until you resume it", account)
            resumed = holds.resume(store, account, now)
        finally:
            store.close()
        if resumed.needs_sign_in:
            return Outcome(200, f"{account}: waits lifted, but it still needs a sign-in: "
                                f"watchfolder auth login {account}", account)
        return Outcome(200, f"{account}: resumed; {resumed.due} waiting item(s) are tried now", account)

    def _retry(self, ref: str, now: float) -> Outcome:
        if not (ref.isascii() and ref.isdigit()):
            return Outcome(400, "refused: no item given")
        try:
            store = Store(self.settings.state_dir)
        except WatchfolderError as exc:
            return Outcome(503, f"the state database cannot be opened: {exc}")
        try:
            item = retrying.find_failed(store, self.settings, ref)
            name = item.result_name or item.name
            new_name = retrying.put_back(self.settings, store, item, now, "the status page")
        except UsageError as exc:
            return Outcome(409, str(exc))
        finally:
            store.close()
        return Outcome(200, f"{item.account}/failed/{name} is back in {item.account}/inbox/ as {new_name}",
                       item.account)
