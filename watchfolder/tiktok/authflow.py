"""`watchfolder auth login` and `auth logout`: TikTok's Login Kit for Desktop flow, done at a terminal.

The user opens TikTok's consent page; TikTok redirects the browser to
``http://127.0.0.1:PORT/callback/?code=…&state=…``. Two ways to catch that answer, raced
against each other: a one-shot local HTTP server on the redirect URI (same machine as the
browser), and the terminal, where the user pastes the redirect URL (a headless box over SSH,
where the browser runs elsewhere and shows an error page holding the URL).
Over 300 lines because both ways of catching the answer and their race belong together.
"""

from __future__ import annotations

import dataclasses
import html
import http.server
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from watchfolder import logs
from watchfolder.core.errors import AuthError, TikTokError, UsageError
from watchfolder.core.model import SCOPE_FOR_MODE, Mode
from watchfolder.tiktok.oauth import BASIC_SCOPE, OAuthClient, challenge, new_verifier, scopes_for
from watchfolder.tiktok.tokens import Tokens, TokenStore, sign_in_hint

# What a missing scope costs, in the words of the warning.
_SCOPE_LOSS = {
    SCOPE_FOR_MODE[Mode.INBOX]: "the account cannot upload drafts",
    SCOPE_FOR_MODE[Mode.DIRECT]: "the account cannot post directly",
    BASIC_SCOPE: "its display name cannot be shown",
}

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>watchfolder</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{title}</h1><p>{text}</p></body></html>"""


@dataclasses.dataclass(frozen=True)
class Answer:
    """TikTok's answer to the consent page, from the callback or pasted. ``state`` is None for a bare code."""

    code: str | None
    state: str | None
    error: str | None = None
    error_description: str | None = None


def parse_answer(text: str) -> Answer | None:
    """Given a pasted line (the redirect URL, its query string, or a bare code), return the answer.

    Return None when the text is none of these.
    """
    text = text.strip().strip("\"'<>")
    if not text:
        return None
    if "://" in text or "?" in text or "=" in text:
        query = urlsplit(text).query if "?" in text else text
        params = {key: values[0] for key, values in parse_qs(query).items()}
        if not params.get("code") and not params.get("error"):
            return None
        return Answer(params.get("code"), params.get("state"), params.get("error"), params.get("error_description"))
    if re.fullmatch(r"\S+", text):
        return Answer(unquote(text), None)
    return None


class CallbackServer:
    """A one-shot HTTP server on the redirect URI that hands TikTok's answer to a queue.

    ``port`` 0 or ``*`` in the URI picks a free port; ``redirect_uri`` is then the actual one.
    Raise OSError from the constructor when the port cannot be bound.
    """

    def __init__(self, redirect_uri: str, answers: queue.Queue[tuple[str, Any]], *, state: str | None = None) -> None:
        parts = urlsplit(redirect_uri)
        host, port = _host_and_port(parts.netloc)
        bind_host = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host.strip("[]")
        expected_path = parts.path.rstrip("/") or "/"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                path = urlsplit(self.path)
                if (path.path.rstrip("/") or "/") != expected_path:
                    self._reply(404, "Not found", "This address only receives TikTok's sign-in answer.")
                    return
                answer = parse_answer("?" + path.query)
                if answer is None:
                    self._reply(400, "Nothing to do", "This address only receives TikTok's sign-in answer.")
                    return
                if state is not None and not (answer.state and secrets.compare_digest(answer.state, state)):
                    # Not TikTok's answer to this login (any page may call a loopback address): ignored, so
                    # it can neither abort the sign-in nor slip in someone else's code.
                    self._reply(400, "Not this sign-in", "This answer does not belong to the sign-in running in "
                                "the terminal, which goes on waiting.")
                    return
                if answer.error:
                    self._reply(200, "Sign-in failed", f"TikTok said: {answer.error_description or answer.error}."
                                " Go back to the terminal.")
                else:
                    self._reply(200, "Answer received", "watchfolder has TikTok's answer. You can close this tab"
                                " and go back to the terminal.")
                answers.put(("callback", answer))

            def _reply(self, status: int, title: str, text: str) -> None:
                body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # http.server's name
                # The default writes the request line, code included, to stderr: say nothing.
                return

        self._server = http.server.HTTPServer((bind_host, port), Handler)
        actual_port = self._server.server_address[1]
        self.redirect_uri = urlunsplit(parts._replace(netloc=f"{host}:{actual_port}"))
        # A short poll interval: close() waits for the serving loop to notice the shutdown.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="auth-callback", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _host_and_port(netloc: str) -> tuple[str, int]:
    """Split ``host:port`` of a redirect URI; ``*`` (TikTok's wildcard port) and a missing port mean any."""
    host, _, port = netloc.rpartition(":")
    if not host or "]" in port:
        return netloc, 0
    if port in ("", "*"):
        return host, 0
    if not port.isdigit():
        raise UsageError(f"tiktok.redirect_uri has a port that is not a number: {netloc}")
    return host, int(port)


def _free_port_uri(redirect_uri: str) -> str:
    """Return ``redirect_uri`` with a wildcard port replaced by a currently free one (paste-only logins)."""
    parts = urlsplit(redirect_uri)
    host, port = _host_and_port(parts.netloc)
    if port:
        return redirect_uri
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def _read_pasted(stdin: TextIO, answers: queue.Queue[tuple[str, Any]], stdout: TextIO) -> None:
    """Put each usable pasted line on ``answers``; put ``("eof", None)`` at the end of input."""
    try:
        for line in iter(stdin.readline, ""):
            if not line.strip():
                continue
            answer = parse_answer(line)
            if answer is None:
                stdout.write("That is not the redirect address. Paste the whole address from the browser's "
                             "address bar (it starts with http://127.0.0.1 or http://localhost).\n")
                stdout.flush()
                continue
            answers.put(("pasted", answer))
            return
    except (OSError, ValueError):
        pass  # stdin closed under us: the callback server may still answer
    answers.put(("eof", None))


def login(
    *,
    oauth: OAuthClient,
    store: TokenStore,
    account: str,
    mode: Mode,
    redirect_uri: str,
    paste: bool | None = None,
    stdin: TextIO,
    stdout: TextIO,
    open_browser: Callable[[str], object] | None,
    timeout: float = 300,
    now: Callable[[], float] = time.time,
) -> Tokens:
    """Sign ``account`` in to TikTok with PKCE and store its tokens; return them.

    ``paste`` None races the local callback server and a pasted redirect URL, True only reads
    the paste, False only runs the server. The server ignores an answer without this login's
    ``state`` (any web page can call a loopback address); a pasted bare code has none and is taken.
    Raise AuthError when the answer is an error, a pasted one belongs to another login (state
    mismatch), none comes within ``timeout`` seconds, or the code is refused; WatchfolderError
    when the token directory is not private.
    """
    store.check_permissions()
    verifier, state = new_verifier(), secrets.token_urlsafe(24)
    wanted = scopes_for(mode)
    answers: queue.Queue[tuple[str, Any]] = queue.Queue()
    server: CallbackServer | None = None
    if paste is not True:
        try:
            server = CallbackServer(redirect_uri, answers, state=state)
        except OSError as exc:
            where = urlsplit(redirect_uri).netloc
            if paste is False:
                raise AuthError(account, f"cannot listen on {where} for TikTok's answer ({exc.strerror}); "
                                "free that port, or paste the redirect address instead") from None
            stdout.write(f"(Cannot listen on {where}: {exc.strerror}. Paste the redirect address instead.)\n")
    actual_uri = server.redirect_uri if server else _free_port_uri(redirect_uri)
    url = oauth.authorize_url(redirect_uri=actual_uri, scopes=wanted, state=state, code_challenge=challenge(verifier))
    stdout.write(f"Open this address in a browser and sign in to the TikTok account for {account!r}:\n\n  {url}\n\n")
    if paste is not False:
        stdout.write("No browser on this machine? Open the address on any computer. After you approve, the "
                     "browser goes to an address starting with\n"
                     f"{actual_uri} (it may show an error page): copy that whole address and paste it here.\n")
    stdout.flush()
    try:
        if server:
            server.start()
        if open_browser is not None:
            try:
                open_browser(url)
            except Exception as exc:  # noqa: BLE001 - any failure to open a browser only means: open it yourself
                stdout.write(f"(Could not open a browser: {type(exc).__name__}. Open the address yourself.)\n")
        if paste is not False:
            threading.Thread(target=_read_pasted, args=(stdin, answers, stdout), name="auth-paste",
                             daemon=True).start()
        answer = _wait(answers, account, timeout, server_running=server is not None)
    finally:
        if server:
            server.close()
    return _finish(oauth, store, account, mode, answer, state=state, verifier=verifier,
                   redirect_uri=actual_uri, stdout=stdout, now=now)


def _wait(answers: queue.Queue[tuple[str, Any]], account: str, timeout: float, *, server_running: bool) -> Answer:
    deadline = time.monotonic() + timeout
    while True:
        try:
            source, answer = answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AuthError(account, f"no answer from TikTok within {timeout:.0f} s; "
                            f"{sign_in_hint(account)}", code="login_timeout") from None
        if source != "eof":
            return answer
        if not server_running:
            raise AuthError(account, "no redirect address was pasted; " + sign_in_hint(account),
                            code="login_cancelled")


def _finish(oauth: OAuthClient, store: TokenStore, account: str, mode: Mode, answer: Answer, *,
            state: str, verifier: str, redirect_uri: str, stdout: TextIO, now: Callable[[], float]) -> Tokens:
    """Check the answer, exchange its code, store the tokens and tell the user what was granted."""
    if answer.state is not None and not secrets.compare_digest(answer.state, state):
        raise AuthError(account, "the sign-in answer does not belong to this login (state mismatch)",
                        code="state_mismatch")
    if answer.error or not answer.code:
        what = "you declined" if answer.error == "access_denied" else (answer.error_description or answer.error)
        raise AuthError(account, f"TikTok sign-in failed ({what}); {sign_in_hint(account)}",
                        code=answer.error or "no_code")
    try:
        grant = oauth.exchange_code(answer.code, redirect_uri=redirect_uri, code_verifier=verifier, now=now())
    except TikTokError as exc:
        raise AuthError(account, f"TikTok did not accept the sign-in ({exc}); {sign_in_hint(account)}",
                        code=exc.code) from None
    tokens = Tokens.from_grant(account, grant, now=now())
    with store.lock(account, on_wait=lambda: _say(stdout, "Waiting for the running daemon to finish renewing the "
                                                          f"tokens of {account!r}…\n")):
        previous = _previous(store, account)
        store.save(tokens)
    if previous is not None and previous.open_id != tokens.open_id:
        stdout.write(f"Note: {account!r} was linked to another TikTok user before (open_id {previous.open_id}); "
                     "it now posts as the user below.\n")
    try:
        name = str(oauth.user_info(tokens.access_token).get("display_name") or "?")
        stdout.write(f"Signed in as {name} (open_id {tokens.open_id}).\n")
    except TikTokError as exc:
        stdout.write(f"Signed in (open_id {tokens.open_id}); the display name could not be read ({exc.code}).\n")
    # No scope list in the answer means nothing to compare, not "nothing granted".
    missing = [scope for scope in scopes_for(mode) if tokens.scopes and scope not in tokens.scopes]
    for scope in missing:
        stdout.write(f"WARNING: TikTok did not grant {scope}: {_SCOPE_LOSS.get(scope, 'some features fail')}; "
                     "sign in again and leave that box ticked.\n")
    stdout.flush()
    logs.get_logger(account=account).info("signed_in", open_id=tokens.open_id, scopes=",".join(tokens.scopes),
                                          missing_scopes=",".join(missing))
    return tokens


def _previous(store: TokenStore, account: str) -> Tokens | None:
    try:
        return store.load(account)
    except AuthError:
        return None  # a damaged file is about to be replaced


def logout(*, oauth: OAuthClient, store: TokenStore, account: str, stdout: TextIO | None = None,
           now: Callable[[], float] = time.time) -> bool:
    """Revoke ``account``'s grant at TikTok and delete its local tokens; return whether it had any.

    A failed revoke is reported on ``stdout`` (and logged) but the local tokens are deleted anyway.
    """
    with store.lock(account):   # a renewal by the daemon finishes first, and none starts meanwhile
        return _logout_locked(oauth=oauth, store=store, account=account, stdout=stdout, now=now)


def _say(stdout: TextIO, text: str) -> None:
    stdout.write(text)
    stdout.flush()


def _logout_locked(*, oauth: OAuthClient, store: TokenStore, account: str, stdout: TextIO | None,
                   now: Callable[[], float]) -> bool:
    try:
        tokens = store.load(account)
    except AuthError:
        return store.delete(account)  # unreadable tokens cannot be revoked; remove them
    if tokens is None:
        return False
    try:
        access_token = tokens.access_token
        if tokens.access_expires_at <= now() < tokens.refresh_expires_at:
            # An expired access token cannot revoke anything: renew it once, just for this.
            access_token = oauth.refresh(tokens.refresh_token, now=now()).access_token
        oauth.revoke(access_token)
        message = f"Revoked watchfolder's access to the TikTok account of {account!r}.\n"
    except (TikTokError, AuthError) as exc:
        code = getattr(exc, "code", "error")
        logs.get_logger(account=account).warning("revoke_failed", code=code)
        message = (f"Could not revoke the grant at TikTok ({code}); the local tokens are deleted anyway. "
                   "To cut access fully, remove the app from the account's app permissions in TikTok.\n")
    deleted = store.delete(account)
    if stdout is not None:
        stdout.write(message)
        stdout.flush()
    return deleted
