"""The config file: what a user writes, what the program makes of it, and how it says what is wrong."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError, UsageError
from watchfolder.core.model import Mode, VideoSource

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"
SECRET = "s3cr3t-Value-that-must-never-show"
MINIMAL = """\
root: media
state_dir: state
tiktok:
  client_key: aw123
accounts:
  alice: {}
"""


def write(folder: Path, text: str, name: str = "watchfolder.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.load(path, env or {})
    return caught.value.problems


# ---- the example ---------------------------------------------------------------------------------


def test_example_config_loads_with_the_documented_defaults() -> None:
    """config.example.yaml loads, and each value it shows is the program's default."""
    settings = config.load(EXAMPLE, {"WATCHFOLDER_CLIENT_SECRET": SECRET})

    assert settings.tiktok.client_secret == SECRET
    assert settings.tiktok.client_secret_source == "env"
    assert settings.watch == config.WatchSettings()
    assert settings.upload == config.UploadSettings()
    assert settings.photos == config.PhotosSettings()
    assert dataclasses.replace(settings.tiktok, client_key="k", client_secret=None, client_secret_source="none") \
        == config.TikTokSettings(client_key="k", client_secret=None, client_secret_source="none")
    assert settings.dedupe is True
    assert (settings.log_level, settings.allow_network_state_dir) == ("info", False)
    # The optional sections are shown commented out: off.
    assert settings.media_host == config.MediaHostSettings()
    assert settings.metrics.listen is None
    assert settings.notify == config.NotifySettings()
    assert [a.name for a in settings.accounts] == ["alice"]


def test_example_config_mentions_every_known_key() -> None:
    """Every key the loader knows appears in the example, at least in a comment."""
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [f"{section}.{key}" for section, keys in config.KEYS.items() for key in keys
               if not re.search(rf"^[ #]*{key}:", text, re.MULTILINE)]

    assert missing == []


# ---- reporting problems --------------------------------------------------------------------------


def test_all_problems_are_reported_at_once_with_key_paths_and_file_name(tmp_path: Path) -> None:
    """One ConfigError lists every problem, each with its key path, and names the file."""
    path = write(tmp_path, """\
root: media
tiktok:
  init_per_minute: -1
watch:
  settle_seconds: soon
  observer: fsevents
upload:
  chunk_size: 100
dedupe: "yes"
accounts:
  alice:
    mode: Direct
    defaults:
      privacy_level: ME
""")
    with pytest.raises(ConfigError) as caught:
        config.load(path, {})

    text = str(caught.value)
    assert str(path) in text
    assert caught.value.problems == [
        "at 'state_dir': required: a folder on a local disk for state and tokens",
        "at 'tiktok.client_key': required: your app's client key from the TikTok portal",
        "at 'tiktok.init_per_minute': must be calls per minute, a whole number (0 means no limit), got -1",
        "at 'watch.settle_seconds': must be a duration like 10, \"10s\" or \"5m\", got 'soon'",
        "at 'watch.observer': must be one of auto, inotify, polling, got 'fsevents'",
        "at 'upload.chunk_size': must be a number of bytes from 5,242,880 to 64,000,000, got 100",
        "at 'dedupe': must be true or false, got 'yes'",
        "at 'accounts.alice.mode': must be one of inbox, direct, got 'Direct'",
        "at 'accounts.alice.defaults.privacy_level': must be one of PUBLIC_TO_EVERYONE, "
        "MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR, SELF_ONLY, got 'ME'",
    ]


def test_unknown_key_suggests_the_closest_known_one(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "watch:\n  setle_seconds: 5\n")

    assert problems_of(path) == ["at 'watch.setle_seconds': unknown key (did you mean 'settle_seconds'?)"]


def test_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "photos:\n  banana: 1\n")

    assert problems_of(path) == ["at 'photos.banana': unknown key (known keys: convert)"]


def test_missing_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path / "nope.yaml", {})

    assert "nope.yaml" in str(caught.value)
    assert "No such file" in caught.value.problems[0]


def test_path_comes_from_watchfolder_config_when_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)

    settings = config.load(None, {"WATCHFOLDER_CONFIG": str(path)})

    assert settings.path == path


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "root: media\nstate_dir: state\n  oops: [\n")

    [problem] = problems_of(path)

    assert problem.startswith("line 3, column ")
    assert "not valid YAML" in problem


def test_a_key_given_twice_is_a_problem_not_a_silent_override(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "accounts:\n  bob: {}\n")

    [problem] = problems_of(path)

    assert problem.startswith("line 7, column 1:")
    assert "'accounts' is given twice" in problem


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a list\n"])
def test_empty_or_non_mapping_file_is_refused(tmp_path: Path, text: str) -> None:
    problems = problems_of(write(tmp_path, text))

    assert problems[0].startswith("at '(top level)': ")


# ---- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [
    (10, 10.0), (10.5, 10.5), ("10", 10.0), ("10s", 10.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0),
    ("1.5h", 5400.0), (" 30 s ", 30.0), (0, 0.0),
])
def test_parse_duration_accepts_numbers_and_unit_strings(value: object, seconds: float) -> None:
    assert config.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", "-5", -5, "5ms", "", True, None, [5], float("nan")])
def test_parse_duration_refuses_anything_else_with_a_readable_message(value: object) -> None:
    with pytest.raises(ValueError, match=r'^must be a duration like 10, "10s" or "5m", got '):
        config.parse_duration(value)


def test_durations_in_the_config_become_seconds(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "watch:\n  settle_seconds: 2m\nupload:\n  retry_initial: 30s\n  retry_max: 1d\n")

    settings = config.load(path, {})

    assert settings.watch.settle_seconds == 120.0
    assert (settings.upload.retry_initial_seconds, settings.upload.retry_max_seconds) == (30.0, 86400.0)


def test_zero_duration_is_refused_where_it_would_break_the_daemon(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "watch:\n  poll_interval: 0\n")

    assert problems_of(path) == ["at 'watch.poll_interval': must be more than 0 seconds, got 0"]


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:9808", ("127.0.0.1", 9808)), (":9808", ("127.0.0.1", 9808)), ("[::1]:9808", ("::1", 9808)),
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("localhost:8787", ("localhost", 8787)),  # noqa: S104
])
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert config.parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9808", "::1:9808", "host:99999", "host:", "a b:1"])
def test_parse_listen_refuses_malformed_addresses(value: str) -> None:
    with pytest.raises(ValueError, match="must be HOST:PORT"):
        config.parse_listen(value)


@pytest.mark.parametrize(("size", "ok"), [(5_242_880, True), (5_242_879, False), (64_000_000, True),
                                          (64_000_001, False), ("10000000", False)])
def test_chunk_size_must_lie_in_tiktoks_range(tmp_path: Path, size: object, ok: bool) -> None:
    path = write(tmp_path, MINIMAL + f"upload:\n  chunk_size: {size!r}\n")

    if ok:
        assert config.load(path, {}).upload.chunk_size == size
    else:
        assert [p.split(":")[0] for p in problems_of(path)] == ["at 'upload.chunk_size'"]


@pytest.mark.parametrize(("value", "ok"), [("0", True), ("1", True), ("-1", False), ("1.5", False), ("true", False)])
def test_rates_are_whole_numbers_with_zero_meaning_no_limit(tmp_path: Path, value: str, ok: bool) -> None:
    path = write(tmp_path, MINIMAL.replace("aw123\n", f"aw123\n  init_per_minute: {value}\n"))

    if ok:
        assert config.load(path, {}).tiktok.init_per_minute == int(value)
    else:
        assert problems_of(path)[0].startswith("at 'tiktok.init_per_minute': ")


@pytest.mark.parametrize(("value", "ok"), [("yes", True), ("false", True), ('"true"', False), ("1", False)])
def test_booleans_must_be_yaml_booleans(tmp_path: Path, value: str, ok: bool) -> None:
    path = write(tmp_path, MINIMAL + f"photos:\n  convert: {value}\n")

    if ok:
        assert isinstance(config.load(path, {}).photos.convert, bool)
    else:
        assert problems_of(path)[0].startswith("at 'photos.convert': must be true or false")


@pytest.mark.parametrize("name", ['"."', '".."', ".hidden", '"a/b"', '""', "1"])
def test_account_names_must_be_usable_as_folder_names(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, MINIMAL.replace("  alice: {}\n", f"  {name}: {{}}\n  bob: {{}}\n"))

    [problem] = problems_of(path)

    assert "must be usable as a folder name" in problem and "letters, digits, spaces" in problem


def test_account_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  Alice: {}\n")

    assert problems_of(path) == ["at 'accounts.Alice': differs from account 'alice' only in letter case"]


def test_no_accounts_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("  alice: {}\n", ""))

    assert problems_of(path)[0].startswith("at 'accounts': required")


def test_accounts_default_to_inbox_and_file_upload(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  bob:\n    mode: direct\n    defaults: {privacy_level: SELF_ONLY}\n")

    settings = config.load(path, {})

    assert settings.account("alice").mode is Mode.INBOX
    assert settings.account("alice").video_source is VideoSource.FILE_UPLOAD
    assert settings.account("alice").defaults == {}
    assert settings.account("bob").mode is Mode.DIRECT
    assert settings.account("bob").defaults == {"privacy_level": "SELF_ONLY"}


def test_unknown_account_is_a_usage_error_listing_the_known_ones(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, MINIMAL + "  bob: {}\n"), {})

    with pytest.raises(UsageError, match=r"^unknown account 'carol'; the config has: alice, bob$"):
        settings.account("carol")


def test_pull_from_url_needs_a_media_host(tmp_path: Path) -> None:
    text = MINIMAL.replace("  alice: {}\n", "  alice:\n    video_source: pull_from_url\n")

    assert problems_of(write(tmp_path, text)) == [
        "at 'accounts.alice.video_source': pull_from_url needs media_host.url_prefix and media_host.serve "
        "or publish_dir"]
    served = text + "media_host:\n  url_prefix: https://m.example.com/t/\n  serve: :8787\n"
    settings = config.load(write(tmp_path, served), {})
    assert settings.media_host.serve == ("127.0.0.1", 8787)
    assert settings.account("alice").video_source is VideoSource.PULL_FROM_URL


@pytest.mark.parametrize(("body", "problem"), [
    ("  url_prefix: https://m.example.com/t\n  serve: :8787\n", "at 'media_host.url_prefix': must end with \"/\""),
    ("  url_prefix: ftp://m.example.com/t/\n  serve: :8787\n", "at 'media_host.url_prefix': must be a URL"),
    ("  serve: :8787\n", "at 'media_host.url_prefix': required"),
    ("  url_prefix: https://m.example.com/t/\n", "at 'media_host': set exactly one of serve"),
    ("  url_prefix: https://m.example.com/t/\n  serve: :1\n  publish_dir: www\n",
     "at 'media_host': set exactly one of serve"),
])
def test_media_host_needs_a_valid_prefix_and_one_way_of_serving(tmp_path: Path, body: str, problem: str) -> None:
    [found] = problems_of(write(tmp_path, MINIMAL + "media_host:\n" + body))

    assert found.startswith(problem)


@pytest.mark.parametrize(("api_base_url", "accepted"), [
    (None, False),                                   # TikTok itself, the default
    ("https://open.tiktokapis.com", False),
    ("https://open-api.TikTokAPIs.com/", False),
    ("http://127.0.0.1:8900", True),                 # an emulator (tests, the demo)
    ("https://tiktok-emulator.lan", True),
])
def test_an_http_media_host_is_refused_while_tiktok_itself_pulls(tmp_path: Path, api_base_url: str | None,
                                                                 accepted: bool) -> None:
    text = MINIMAL + "media_host:\n  url_prefix: http://m.example.com/t/\n  serve: :8787\n"
    if api_base_url:
        text = text.replace("aw123\n", f"aw123\n  api_base_url: {api_base_url}\n")
    path = write(tmp_path, text)

    if accepted:
        assert config.load(path, {}).media_host.url_prefix == "http://m.example.com/t/"
    else:
        [problem] = problems_of(path)
        assert problem.startswith("at 'media_host.url_prefix': TikTok fetches photos and pulled videos only over "
                                  "https: use an https:// prefix")
    https = write(tmp_path, text.replace("http://m.example", "https://m.example"))
    assert config.load(https, {}).media_host.url_prefix == "https://m.example.com/t/"


def test_retry_max_shorter_than_retry_initial_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "upload:\n  retry_initial: 1h\n  retry_max: 5m\n")

    assert problems_of(path) == ["at 'upload.retry_max': must not be shorter than upload.retry_initial"]


def test_optional_sections_turn_on_when_given(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "metrics:\n  listen: '[::1]:9808'\nnotify:\n  ntfy: https://ntfy.sh/t\n"
                 "log_level: debug\n")

    settings = config.load(path, {})

    assert settings.metrics.listen == ("::1", 9808)
    assert settings.notify == config.NotifySettings(webhook=None, ntfy="https://ntfy.sh/t")
    assert settings.log_level == "debug"


def test_api_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("aw123\n", "aw123\n  api_base_url: http://127.0.0.1:9000/\n"))

    assert config.load(path, {}).tiktok.api_base_url == "http://127.0.0.1:9000"


# ---- paths ---------------------------------------------------------------------------------------


def test_relative_paths_follow_the_config_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative root means next to the config file, wherever the daemon was started."""
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, MINIMAL + "media_host:\n  url_prefix: https://m.example.com/\n  publish_dir: ../www\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = config.load(Path("..") / "etc" / path.name, {})

    assert settings.path == folder / path.name
    assert settings.root == folder / "media"
    assert settings.state_dir == folder / "state"
    assert settings.media_host.publish_dir == tmp_path / "www"


def test_home_is_expanded_in_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, MINIMAL.replace("root: media", "root: ~/tiktok"))

    assert config.load(path, {}).root == tmp_path / "home" / "tiktok"


def test_load_does_not_require_the_folders_to_exist(tmp_path: Path) -> None:
    """Checking folders is `check`'s job: load() only reads the file."""
    settings = config.load(write(tmp_path, MINIMAL.replace("root: media", "root: /no/such/place")), {})

    assert settings.root == Path("/no/such/place")


# ---- the client secret ---------------------------------------------------------------------------


def secret_setup(tmp_path: Path, sources: set[str]) -> tuple[Path, dict[str, str]]:
    """Write a config offering the secret from each named source, each source with its own value."""
    text = MINIMAL
    env: dict[str, str] = {}
    if "file" in sources:
        write(tmp_path, "from-file\n", "client_secret")
        text = text.replace("aw123\n", "aw123\n  client_secret_file: client_secret\n")
    if "inline" in sources:
        text = text.replace("aw123\n", "aw123\n  client_secret: from-inline\n")
    if "env" in sources:
        env["WATCHFOLDER_CLIENT_SECRET"] = "from-env"
    if "credentials" in sources:
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        write(credentials, "from-credentials", "client_secret")
        env["CREDENTIALS_DIRECTORY"] = str(credentials)
    return write(tmp_path, text), env


@pytest.mark.parametrize(("sources", "winner"), [
    ({"file", "env", "credentials", "inline"}, "file"),
    ({"env", "credentials", "inline"}, "env"),
    ({"credentials", "inline"}, "credentials"),
    ({"inline"}, "inline"),
])
def test_client_secret_is_taken_from_the_first_source_in_order(tmp_path: Path, sources: set[str],
                                                                 winner: str) -> None:
    path, env = secret_setup(tmp_path, sources)

    tiktok = config.load(path, env).tiktok

    assert (tiktok.client_secret, tiktok.client_secret_source) == (f"from-{winner}", winner)


def test_no_client_secret_anywhere_gives_none(tmp_path: Path) -> None:
    tiktok = config.load(write(tmp_path, MINIMAL), {"CREDENTIALS_DIRECTORY": str(tmp_path / "empty")}).tiktok

    assert (tiktok.client_secret, tiktok.client_secret_source) == (None, "none")


def test_unreadable_secret_file_names_the_key_and_the_os_error(tmp_path: Path) -> None:
    (tmp_path / "secret_dir").mkdir()  # reading a folder fails even for root
    path = write(tmp_path, MINIMAL.replace("aw123\n", "aw123\n  client_secret_file: secret_dir\n"))

    [problem] = problems_of(path, {"WATCHFOLDER_CLIENT_SECRET": "unused"})

    assert problem.startswith("at 'tiktok.client_secret_file': cannot read ")
    assert problem.endswith("secret_dir: Is a directory")


def test_missing_secret_file_is_a_problem_not_a_silent_fallback(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("aw123\n", "aw123\n  client_secret_file: nope\n"))

    [problem] = problems_of(path, {"WATCHFOLDER_CLIENT_SECRET": "unused"})

    assert problem.startswith("at 'tiktok.client_secret_file': cannot read ")


def test_secret_never_appears_in_repr_or_str_of_settings(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("aw123\n", f"aw123\n  client_secret: {SECRET}\n"))

    settings = config.load(path, {})

    assert settings.tiktok.client_secret == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.tiktok)


@pytest.mark.parametrize("text", [
    # a bad value beside the secret: the error lists other problems but not the secret
    MINIMAL.replace("aw123\n", f"aw123\n  client_secret: {SECRET}\n  timeout_seconds: never\n"),
    # a secret that is not text (YAML made it a list)
    MINIMAL.replace("aw123\n", f"aw123\n  client_secret: [{SECRET}]\n"),
    # a misspelt key holding the secret
    MINIMAL.replace("aw123\n", f"aw123\n  client_secrt: {SECRET}\n"),
    # a YAML syntax error on the secret's own line (yaml's own message would quote the line)
    MINIMAL.replace("aw123\n", f"aw123\n  client_secret: {SECRET}: {SECRET}\n"),
])
def test_secret_never_appears_in_a_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text), {})

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert all(SECRET not in problem for problem in caught.value.problems)


def test_settings_are_frozen(tmp_path: Path) -> None:
    """Settings are shared by threads: nobody may change them after load."""
    settings = config.load(write(tmp_path, MINIMAL), {})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.watch.settle_seconds = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.account("alice").defaults["title"] = "x"  # type: ignore[index]
