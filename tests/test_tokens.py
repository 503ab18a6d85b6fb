"""The token store on disk: private, atomic, refusing to run when others can read it."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import structlog

from watchfolder import logs
from watchfolder.core.errors import AuthError, TikTokError, UsageError, WatchfolderError
from watchfolder.emulator.accounts import short_hash
from watchfolder.tiktok.oauth import OAuthClient
from watchfolder.tiktok.tokens import TokenManager, Tokens, TokenStore

NOW = 1_800_000_000.0


def make_tokens(account: str = "alice", *, access: str = "act.first-access", refresh: str = "rft.first-refresh",
                access_left: float = 86400, refresh_left: float = 31536000) -> Tokens:
    return Tokens(
        account=account, open_id="-000open", access_token=access, access_expires_at=NOW + access_left,
        refresh_token=refresh, refresh_expires_at=NOW + refresh_left,
        scopes=("user.info.basic", "video.upload"), updated_at=NOW,
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class TestTokenStore:
    def test_save_then_load_gives_the_same_tokens(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path / "state")
        tokens = make_tokens()

        store.save(tokens)

        assert store.load("alice") == tokens
        assert store.accounts() == ["alice"]

    def test_an_account_that_never_signed_in_has_no_tokens(self, tmp_path: Path) -> None:
        assert TokenStore(tmp_path).load("bob") is None

    def test_files_are_0600_and_the_directory_0700_by_mode_bits(self, tmp_path: Path) -> None:
        """Checked on st_mode: the tests run as root, for whom every read succeeds."""
        old_umask = os.umask(0o022)  # a typical umask would give 0644/0755 if the code relied on it
        try:
            store = TokenStore(tmp_path / "missing" / "state")
            store.check_permissions()
            store.save(make_tokens())
        finally:
            os.umask(old_umask)

        assert mode_of(tmp_path / "missing" / "state") == 0o700
        assert mode_of(store.directory) == 0o700
        assert mode_of(store.directory / "alice.json") == 0o600

    def test_saving_again_replaces_the_file_whole_and_leaves_no_temp_files(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())

        store.save(make_tokens(access="act.second", refresh="rft.second"))

        loaded = store.load("alice")
        assert loaded is not None
        assert (loaded.access_token, loaded.refresh_token) == ("act.second", "rft.second")
        assert sorted(path.name for path in store.directory.iterdir()) == ["alice.json"]
        assert mode_of(store.directory / "alice.json") == 0o600

    def test_a_failed_write_keeps_the_old_file_intact(self, tmp_path: Path) -> None:
        """A save that cannot complete (here: the target name is a directory) leaves the old tokens readable."""
        store = TokenStore(tmp_path)
        store.save(make_tokens("alice"))
        (store.directory / "bob.json").mkdir()

        with pytest.raises(OSError):
            store.save(make_tokens("bob"))

        assert store.load("alice") == make_tokens("alice")
        assert not [path for path in store.directory.iterdir() if path.name.endswith(".tmp")]

    def test_a_group_readable_token_directory_is_refused_with_the_chmod_hint(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())
        os.chmod(store.directory, 0o755)  # noqa: S103  (too open on purpose)

        with pytest.raises(WatchfolderError) as caught:
            store.check_permissions()

        message = str(caught.value)
        assert f"{store.directory} is readable by group/others (mode 0755)" in message
        assert f"fix with: chmod 700 {store.directory}; chmod 600 {store.directory}/*.json" in message

    def test_a_world_readable_token_file_is_refused(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())
        os.chmod(store.directory / "alice.json", 0o644)

        with pytest.raises(WatchfolderError, match=r"alice\.json is readable by group/others \(mode 0644\)"):
            store.check_permissions()

    def test_following_the_hint_fixes_it(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())
        os.chmod(store.directory, 0o750)  # noqa: S103  (too open on purpose)
        os.chmod(store.directory / "alice.json", 0o640)

        os.chmod(store.directory, 0o700)
        os.chmod(store.directory / "alice.json", 0o600)

        store.check_permissions()  # no error

    def test_the_file_holds_what_the_issue_lists(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())

        data = json.loads((store.directory / "alice.json").read_text())

        assert {"access_token", "access_expires_at", "refresh_token", "refresh_expires_at", "open_id",
                "scopes"} <= set(data)
        assert data["scopes"] == ["user.info.basic", "video.upload"]

    def test_a_damaged_file_is_an_auth_error_that_does_not_quote_it(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())
        (store.directory / "alice.json").write_text('{"access_token": "act.leaky", "broken": ')

        with pytest.raises(AuthError) as caught:
            store.load("alice")

        assert caught.value.code == "tokens_unreadable"
        assert "act.leaky" not in str(caught.value)
        assert str(caught.value).endswith("sign in with: watchfolder auth login alice")

    def test_delete_says_whether_there_was_anything(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens())

        assert store.delete("alice") is True
        assert store.delete("alice") is False
        assert store.load("alice") is None

    @pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
    def test_account_names_cannot_leave_the_token_directory(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(UsageError):
            TokenStore(tmp_path).load(name)


def test_repr_and_str_never_show_the_tokens() -> None:
    tokens = make_tokens(access="act.very-secret-access", refresh="rft.very-secret-refresh")

    for text in (repr(tokens), str(tokens), f"{tokens}"):
        assert "very-secret" not in text
        assert "alice" in text


# -- the manager, against the emulator ------------------------------------------------------------

BASIC_UPLOAD = ("user.info.basic", "video.upload")


def oauth_for(emulator: Any) -> OAuthClient:
    return OAuthClient(api_base_url=emulator.base_url, client_key=emulator.config.client_key,
                       client_secret=emulator.config.client_secret, timeout=10)


def signed_in(emulator: Any, store: TokenStore, name: str = "alice", **user_options: Any) -> Tokens:
    """Create an emulator user and store its tokens as `auth login` would."""
    user = emulator.add_user(name, **{"scopes": BASIC_UPLOAD, **user_options})
    now = emulator.clock.now()
    tokens = Tokens(name, user.open_id, user.access_token, now + user.access_ttl, user.refresh_token,
                    now + user.refresh_ttl, tuple(user.scopes), now)
    store.save(tokens)
    return tokens


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "state")


def manager_for(emulator: Any, store: TokenStore) -> TokenManager:
    return TokenManager(store, oauth_for(emulator), margin_seconds=300, clock=emulator.clock.now)


class TestTokenManager:
    def test_a_fresh_token_is_used_as_is(self, emulator: Any, store: TokenStore) -> None:
        tokens = signed_in(emulator, store)

        assert manager_for(emulator, store).access_token("alice") == tokens.access_token
        assert emulator.records.refreshes == []

    def test_refresh_within_the_margin_rotates_and_never_sends_the_old_refresh_token_again(
            self, emulator: Any, store: TokenStore) -> None:
        first = signed_in(emulator, store)
        manager = manager_for(emulator, store)
        emulator.clock.advance(86400 - 60)  # one minute left: inside the 5-minute margin

        new_access = manager.access_token("alice")

        second = store.load("alice")
        assert second is not None
        assert new_access == second.access_token != first.access_token
        assert second.refresh_token != first.refresh_token  # the rotated token was committed
        assert oauth_for(emulator).user_info(new_access)["open_id"] == first.open_id

        emulator.clock.advance(86400)
        manager.access_token("alice")

        sent = [record.old_refresh_token_hash for record in emulator.records.refreshes]
        assert sent == [short_hash(first.refresh_token), short_hash(second.refresh_token)]
        assert all(record.ok for record in emulator.records.refreshes)

    def test_lifetimes_come_from_each_answer(self, emulator: Any, store: TokenStore) -> None:
        """The newer docs' 2 h / 180 d lifetimes are taken from expires_in / refresh_expires_in, not assumed."""
        signed_in(emulator, store, access_ttl=7200, refresh_ttl=180 * 86400)
        emulator.clock.advance(7200 - 10)

        manager_for(emulator, store).access_token("alice")

        tokens = store.load("alice")
        assert tokens is not None
        now = emulator.clock.now()
        assert tokens.access_expires_at == pytest.approx(now + 7200, abs=1)
        assert tokens.refresh_expires_at == pytest.approx(now + 180 * 86400, abs=1)

    def test_many_threads_asking_at_once_cause_exactly_one_refresh(self, emulator: Any, store: TokenStore) -> None:
        signed_in(emulator, store)
        manager = manager_for(emulator, store)
        emulator.clock.advance(86400 - 60)
        barrier = threading.Barrier(8)

        def ask() -> str:
            barrier.wait()
            return manager.access_token("alice")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: ask(), range(8)))

        assert len(emulator.records.refreshes) == 1
        assert len(set(answers)) == 1
        stored = store.load("alice")
        assert stored is not None
        assert answers[0] == stored.access_token

    def test_a_rejected_token_is_refreshed_once_however_many_workers_saw_it(self, emulator: Any,
                                                                            store: TokenStore) -> None:
        """TikTok said access_token_invalid to two callers holding the same token: one refresh serves both."""
        tokens = signed_in(emulator, store)
        manager = manager_for(emulator, store)
        emulator.expire_access_token(tokens.open_id)
        with pytest.raises(TikTokError) as caught:
            oauth_for(emulator).user_info(tokens.access_token)
        assert caught.value.code == "access_token_invalid"

        first = manager.refresh("alice", rejected_token=tokens.access_token)
        second = manager.refresh("alice", rejected_token=tokens.access_token)

        assert first == second
        assert len(emulator.records.refreshes) == 1
        assert oauth_for(emulator).user_info(first)["open_id"] == tokens.open_id

    def test_invalid_grant_is_an_auth_error_ending_with_the_sign_in_command(self, emulator: Any,
                                                                            store: TokenStore) -> None:
        tokens = signed_in(emulator, store)
        emulator.revoke(tokens.open_id)  # the user removed the app in TikTok
        emulator.clock.advance(86400)

        with pytest.raises(AuthError) as caught:
            manager_for(emulator, store).access_token("alice")

        assert (caught.value.account, caught.value.code) == ("alice", "invalid_grant")
        assert str(caught.value).endswith("sign in with: watchfolder auth login alice")
        assert tokens.refresh_token not in str(caught.value)

    def test_an_expired_refresh_token_is_not_even_sent(self, emulator: Any, store: TokenStore) -> None:
        signed_in(emulator, store, access_ttl=600, refresh_ttl=3600)
        emulator.clock.advance(3601)

        with pytest.raises(AuthError) as caught:
            manager_for(emulator, store).access_token("alice")

        assert caught.value.code == "refresh_expired"
        assert str(caught.value).endswith("sign in with: watchfolder auth login alice")
        assert emulator.records.refreshes == []

    def test_an_account_that_never_signed_in(self, emulator: Any, store: TokenStore) -> None:
        with pytest.raises(AuthError) as caught:
            manager_for(emulator, store).access_token("alice")

        assert caught.value.code == "auth_required"
        assert str(caught.value) == "no tokens for 'alice': sign in with: watchfolder auth login alice"

    def test_a_refresh_that_drops_a_scope_is_an_auth_error_but_keeps_the_rotated_token(
            self, emulator: Any, store: TokenStore) -> None:
        tokens = signed_in(emulator, store)
        store.save(dataclasses.replace(tokens, scopes=(*tokens.scopes, "video.publish")))  # had it before
        emulator.clock.advance(86400)

        with pytest.raises(AuthError) as caught:
            manager_for(emulator, store).access_token("alice")

        assert caught.value.code == "scope_lost"
        assert "video.publish" in str(caught.value)
        stored = store.load("alice")
        assert stored is not None
        assert stored.refresh_token != tokens.refresh_token

    def test_tokens_that_could_not_be_saved_are_kept_and_saved_before_anything_else(
            self, emulator: Any, store: TokenStore) -> None:
        """A full disk during a refresh must not lead to the rotated-away refresh token being sent again."""
        first = signed_in(emulator, store)
        flaky = FlakyStore(store.state_dir)
        manager = TokenManager(flaky, oauth_for(emulator), clock=emulator.clock.now)
        emulator.clock.advance(86400)

        with pytest.raises(WatchfolderError, match="could not save the renewed tokens of 'alice'"):
            manager.access_token("alice")
        token = manager.access_token("alice")  # the disk has room again

        stored = store.load("alice")
        assert stored is not None
        assert token == stored.access_token
        assert stored.refresh_token != first.refresh_token
        assert len(emulator.records.refreshes) == 1

    def test_log_events_of_refreshes_carry_no_token(self, emulator: Any, store: TokenStore) -> None:
        """Checked on the raw event dicts, before any redaction: the manager never hands a token to the logger."""
        first = signed_in(emulator, store)
        manager = manager_for(emulator, store)
        emulator.clock.advance(86400)
        logs.configure("info", json=True, stream=io.StringIO())
        with structlog.testing.capture_logs() as events:
            manager.access_token("alice")
            emulator.revoke(first.open_id)
            emulator.clock.advance(86400)
            with pytest.raises(AuthError):
                manager.access_token("alice")

        second = store.load("alice")
        assert second is not None
        assert [event["event"] for event in events] == ["token_refreshed", "token_refresh_refused"]
        text = repr(events)
        for secret in (first.access_token, first.refresh_token, second.access_token, second.refresh_token):
            assert secret not in text

    def test_expiring_sign_ins_are_listed_and_warned_about(self, tmp_path: Path) -> None:
        store = TokenStore(tmp_path)
        store.save(make_tokens("alice", refresh_left=3 * 86400))
        store.save(make_tokens("bob", refresh_left=60 * 86400))
        manager = TokenManager(store, OAuthClient(api_base_url="http://127.0.0.1:9", client_key="k",
                                                  client_secret=None), clock=lambda: NOW)

        soon = manager.expiring_soon(14 * 86400)
        warnings = manager.expiry_warnings(14 * 86400)

        assert [tokens.account for tokens in soon] == ["alice"]
        assert len(warnings) == 1
        assert warnings[0].startswith("alice: the TikTok sign-in expires in 3.0 days")
        assert warnings[0].endswith("sign in with: watchfolder auth login alice")


class FlakyStore(TokenStore):
    """A store whose first save fails as a full disk would (root ignores permission bits, so no chmod trick)."""

    failures = 1

    def save(self, tokens: Tokens) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().save(tokens)
