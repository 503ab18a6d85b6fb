"""`auth login` / `auth logout`: the whole sign-in against the emulator, and the pieces it is made of."""

from __future__ import annotations

import io
import os
import queue
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from watchfolder.core.errors import AuthError, TikTokError, UsageError, WatchfolderError
from watchfolder.core.model import Mode
from watchfolder.tiktok import authflow
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import Tokens, TokenStore


class TestParseAnswer:
    def test_a_full_redirect_url(self) -> None:
        answer = authflow.parse_answer("http://127.0.0.1:8765/callback/?code=ab%2Acd%210&scopes=user.info.basic"
                                       "&state=xyz\n")

        assert answer == authflow.Answer(code="ab*cd!0", state="xyz")

    def test_quotes_and_angle_brackets_from_copying_are_ignored(self) -> None:
        answer = authflow.parse_answer('  "<http://localhost:8765/callback/?code=C1&state=S1>"  ')

        assert answer == authflow.Answer(code="C1", state="S1")

    def test_a_bare_code_has_no_state_to_check(self) -> None:
        assert authflow.parse_answer("ab%2Acd%210") == authflow.Answer(code="ab*cd!0", state=None)

    def test_an_error_redirect(self) -> None:
        answer = authflow.parse_answer("http://127.0.0.1:8765/callback/?error=access_denied"
                                       "&error_description=User+cancelled&state=S")

        assert answer is not None
        assert (answer.error, answer.error_description, answer.code) == ("access_denied", "User cancelled", None)

    @pytest.mark.parametrize("text", ["", "   ", "http://127.0.0.1:8765/callback/", "what is this?", "a b c"])
    def test_anything_else_is_not_an_answer(self, text: str) -> None:
        assert authflow.parse_answer(text) is None


class TestRedirectUri:
    @pytest.mark.parametrize(
        ("netloc", "expected"),
        [("127.0.0.1:8765", ("127.0.0.1", 8765)), ("localhost:*", ("localhost", 0)), ("127.0.0.1", ("127.0.0.1", 0))],
    )
    def test_host_and_port(self, netloc: str, expected: tuple[str, int]) -> None:
        assert authflow._host_and_port(netloc) == expected

    def test_a_port_that_is_not_a_number_is_a_usage_error(self) -> None:
        with pytest.raises(UsageError, match="redirect_uri"):
            authflow._host_and_port("127.0.0.1:eighty")


class TestCallbackServer:
    def serve(self) -> tuple[authflow.CallbackServer, queue.Queue[tuple[str, Any]]]:
        answers: queue.Queue[tuple[str, Any]] = queue.Queue()
        server = authflow.CallbackServer("http://127.0.0.1:*/callback/", answers, state="S")
        server.start()
        return server, answers

    def test_a_wildcard_port_becomes_the_port_actually_bound(self) -> None:
        server, _ = self.serve()
        try:
            assert server.redirect_uri.startswith("http://127.0.0.1:")
            assert server.redirect_uri.endswith("/callback/")
            assert "*" not in server.redirect_uri
        finally:
            server.close()

    def test_the_redirect_gets_a_friendly_page_and_the_answer_is_queued(self,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
        server, answers = self.serve()
        try:
            response = requests.get(server.redirect_uri + "?code=SECRETCODE&state=S", timeout=5)
        finally:
            server.close()

        assert response.status_code == 200
        assert "close this tab" in response.text
        assert answers.get(timeout=1) == ("callback", authflow.Answer(code="SECRETCODE", state="S"))
        captured = capsys.readouterr()
        assert "SECRETCODE" not in captured.err + captured.out  # http.server's request log is silenced

    def test_other_paths_are_not_answers(self) -> None:
        server, answers = self.serve()
        try:
            base = server.redirect_uri.rsplit("/callback/", 1)[0]
            favicon = requests.get(base + "/favicon.ico", timeout=5)
            bare = requests.get(server.redirect_uri, timeout=5)
        finally:
            server.close()

        assert (favicon.status_code, bare.status_code) == (404, 400)
        assert answers.empty()


# -- the whole sign-in, against the emulator ------------------------------------------------------

ANY_PORT = "http://127.0.0.1:*/callback/"


def oauth_for(emulator: Any, api_base_url: str | None = None) -> OAuthClient:
    return OAuthClient(api_base_url=api_base_url or emulator.base_url, client_key=emulator.config.client_key,
                       client_secret=emulator.config.client_secret, timeout=10)


def browser(url: str) -> None:
    """The user's browser on this machine: TikTok's page approves and redirects to our callback server."""
    requests.get(url, allow_redirects=True, timeout=10)


class BrowserElsewhere:
    """The user's browser on another computer: it ends on an error page whose address the user pastes."""

    def __init__(self, *lines_before: str, tamper: Callable[[str], str] = lambda location: location) -> None:
        self.stdin = io.StringIO()
        self.lines_before = lines_before
        self.tamper = tamper

    def __call__(self, url: str) -> None:
        location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        self.stdin.write("".join(line + "\n" for line in self.lines_before) + self.tamper(location) + "\n")
        self.stdin.seek(0)


def login(emulator: Any, store: TokenStore, stdout: io.StringIO, **options: Any) -> Tokens:
    arguments: dict[str, Any] = {
        "oauth": oauth_for(emulator), "store": store, "account": "alice", "mode": Mode.INBOX,
        "redirect_uri": ANY_PORT, "stdin": io.StringIO(), "stdout": stdout, "open_browser": browser,
        "timeout": 10, "now": emulator.clock.now, **options}
    return authflow.login(**arguments)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "state")


class TestLogin:
    def test_through_the_local_callback_server(self, emulator: Any, store: TokenStore) -> None:
        user = emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        stdout = io.StringIO()

        tokens = login(emulator, store, stdout)

        assert store.load("alice") == tokens
        assert tokens.open_id == user.open_id
        assert tokens.scopes == ("user.info.basic", "video.upload")
        assert f"Signed in as Alice (open_id {user.open_id})." in stdout.getvalue()
        assert "WARNING" not in stdout.getvalue()
        assert tokens.access_token not in stdout.getvalue()
        assert oauth_for(emulator).user_info(tokens.access_token)["open_id"] == user.open_id

    def test_through_a_pasted_redirect_url(self, emulator: Any, store: TokenStore) -> None:
        """Headless: nothing listens on the redirect port; the user pastes the address (after one wrong try)."""
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        elsewhere = BrowserElsewhere("https://www.tiktok.com/")
        stdout = io.StringIO()

        tokens = login(emulator, store, stdout, paste=True, stdin=elsewhere.stdin, open_browser=elsewhere,
                       redirect_uri="http://127.0.0.1:8765/callback/")

        assert store.load("alice") == tokens
        assert "That is not the redirect address" in stdout.getvalue()
        assert "Signed in as Alice" in stdout.getvalue()

    def test_the_redirect_address_is_still_accepted_when_the_port_is_taken(self, emulator: Any,
                                                                          store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            elsewhere = BrowserElsewhere()
            stdout = io.StringIO()

            tokens = login(emulator, store, stdout, stdin=elsewhere.stdin, open_browser=elsewhere,
                           redirect_uri=f"http://127.0.0.1:{busy.getsockname()[1]}/callback/")

        assert "Cannot listen on" in stdout.getvalue()
        assert store.load("alice") == tokens

    def test_an_answer_with_the_wrong_state_is_refused(self, emulator: Any, store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        elsewhere = BrowserElsewhere(tamper=lambda location: re.sub(r"state=[^&]+", "state=forged", location))

        with pytest.raises(AuthError) as caught:
            login(emulator, store, io.StringIO(), paste=True, stdin=elsewhere.stdin, open_browser=elsewhere,
                  redirect_uri="http://127.0.0.1:8765/callback/")

        assert str(caught.value) == "the sign-in answer does not belong to this login (state mismatch)"
        assert store.load("alice") is None
        assert [r for r in emulator.records.requests if r.endpoint == "token"] == []

    @pytest.mark.parametrize("forged", [
        {"code": "attacker-code", "state": "guess"},        # someone else's code, to link their account
        {"code": "attacker-code"},                          # no state at all
        {"error": "access_denied"},                         # any open page aborting the login, before
        {"error": "access_denied", "state": ""},
    ])
    def test_a_callback_without_this_logins_state_is_ignored_and_the_login_goes_on(
            self, emulator: Any, store: TokenStore, forged: dict[str, str]) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        refused = []

        def forger_then_user(url: str) -> None:
            redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
            refused.append(requests.get(redirect_uri, params=forged, timeout=10))
            browser(url)   # then the user approves, as they meant to

        tokens = login(emulator, store, io.StringIO(), open_browser=forger_then_user)

        assert refused[0].status_code == 400 and "does not belong to the sign-in" in refused[0].text
        assert store.load("alice") == tokens
        exchanged = [r for r in emulator.records.requests if r.endpoint == "token"]
        assert len(exchanged) == 1   # only the real code was ever sent to TikTok

    def test_a_declined_consent_is_an_auth_error(self, emulator: Any, store: TokenStore) -> None:
        def decline(url: str) -> None:
            query = parse_qs(urlsplit(url).query)
            requests.get(query["redirect_uri"][0], params={"error": "access_denied", "state": query["state"][0],
                                                           "error_description": "User denied"}, timeout=10)

        with pytest.raises(AuthError) as caught:
            login(emulator, store, io.StringIO(), open_browser=decline)

        assert caught.value.code == "access_denied"
        assert "you declined" in str(caught.value)
        assert str(caught.value).endswith("sign in with: watchfolder auth login alice")

    def test_an_unticked_scope_the_mode_needs_is_a_clear_warning(self, emulator: Any, store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic",))  # the user unticked video.upload
        stdout = io.StringIO()

        tokens = login(emulator, store, stdout)

        assert tokens.scopes == ("user.info.basic",)
        assert ("WARNING: TikTok did not grant video.upload: the account cannot upload drafts; "
                "sign in again and leave that box ticked.") in stdout.getvalue()

    def test_direct_mode_asks_for_video_publish(self, emulator: Any, store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload", "video.publish"))
        asked: list[str] = []

        def recording_browser(url: str) -> None:
            asked.append(parse_qs(urlsplit(url).query)["scope"][0])
            browser(url)

        tokens = login(emulator, store, io.StringIO(), mode=Mode.DIRECT, open_browser=recording_browser)

        assert asked == ["user.info.basic,video.publish"]
        assert tokens.scopes == ("user.info.basic", "video.publish")

    def test_no_answer_in_time(self, emulator: Any, store: TokenStore) -> None:
        with pytest.raises(AuthError) as caught:
            login(emulator, store, io.StringIO(), paste=False, open_browser=None, timeout=0.2)

        assert caught.value.code == "login_timeout"

    def test_nothing_pasted(self, emulator: Any, store: TokenStore) -> None:
        with pytest.raises(AuthError) as caught:
            login(emulator, store, io.StringIO(), paste=True, open_browser=None,
                  redirect_uri="http://127.0.0.1:8765/callback/")

        assert caught.value.code == "login_cancelled"

    def test_a_token_directory_open_to_others_stops_the_login_before_anything_is_sent(
            self, emulator: Any, store: TokenStore) -> None:
        store.check_permissions()
        os.chmod(store.directory, 0o755)  # noqa: S103  (too open on purpose)

        with pytest.raises(WatchfolderError, match="chmod 700"):
            login(emulator, store, io.StringIO())

        assert emulator.records.requests == []


class TestLogout:
    def test_revokes_at_tiktok_and_deletes_the_local_tokens(self, emulator: Any, store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        tokens = login(emulator, store, io.StringIO())
        stdout = io.StringIO()

        assert authflow.logout(oauth=oauth_for(emulator), store=store, account="alice", stdout=stdout,
                               now=emulator.clock.now) is True

        assert store.load("alice") is None
        assert "Revoked" in stdout.getvalue()
        with pytest.raises(TikTokError) as caught:
            oauth_for(emulator).user_info(tokens.access_token)
        assert caught.value.code == "access_token_invalid"

    def test_an_expired_access_token_is_renewed_once_to_revoke(self, emulator: Any, store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        login(emulator, store, io.StringIO())
        emulator.clock.advance(86400 + 1)

        authflow.logout(oauth=oauth_for(emulator), store=store, account="alice", now=emulator.clock.now)

        assert len(emulator.records.refreshes) == 1
        assert [r.http_status for r in emulator.records.requests if r.endpoint == "revoke"] == [200]

    def test_a_failed_revoke_is_reported_and_the_tokens_are_deleted_anyway(self, emulator: Any,
                                                                          store: TokenStore) -> None:
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        login(emulator, store, io.StringIO())
        stdout = io.StringIO()

        deleted = authflow.logout(oauth=oauth_for(emulator, api_base_url="http://127.0.0.1:9"), store=store,
                                  account="alice", stdout=stdout, now=emulator.clock.now)

        assert deleted is True
        assert store.load("alice") is None
        assert "Could not revoke the grant at TikTok (network_error)" in stdout.getvalue()

    def test_an_account_without_tokens(self, emulator: Any, store: TokenStore) -> None:
        assert authflow.logout(oauth=oauth_for(emulator), store=store, account="alice") is False


class TestRealTerminalInput:
    def test_a_redirect_address_pasted_through_a_pipe(self, emulator: Any, store: TokenStore) -> None:
        """stdin with a real file descriptor (a terminal or a pipe); the address arrives in two pieces."""
        emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
        read_end, write_end = os.pipe()

        def elsewhere(url: str) -> None:
            location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
            half = len(location) // 2  # arrives in two pieces, as a slow paste may
            os.write(write_end, location[:half].encode())
            os.write(write_end, location[half:].encode() + b"\n")

        with os.fdopen(read_end) as stdin:
            try:
                tokens = login(emulator, store, io.StringIO(), paste=True, stdin=stdin, open_browser=elsewhere,
                               redirect_uri="http://127.0.0.1:8765/callback/")
            finally:
                os.close(write_end)

        assert store.load("alice") == tokens
