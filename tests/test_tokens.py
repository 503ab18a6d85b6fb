"""The token store on disk: private, atomic, refusing to run when others can read it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from watchfolder.errors import AuthError, UsageError, WatchfolderError
from watchfolder.tokens import Tokens, TokenStore

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
