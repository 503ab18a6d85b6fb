"""Post settings: account defaults plus a settings file, checked against TikTok's rules before any call."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyfakefs.fake_filesystem import FakeFilesystem

from watchfolder.config import post as postsettings
from watchfolder.core.errors import MediaError
from watchfolder.core.model import Kind, Mode

CAT = "\U0001F408"  # outside the BMP: one character, two UTF-16 units


def resolve(file_values: dict[str, object] | None = None, defaults: dict[str, object] | None = None, *,
            kind: Kind = Kind.VIDEO, mode: Mode = Mode.INBOX,
            source_name: str | None = "clip.yaml") -> postsettings.PostSettings:
    return postsettings.resolve(defaults or {}, file_values or {}, kind=kind, mode=mode, source_name=source_name)


def refusal(file_values: dict[str, object] | None = None, defaults: dict[str, object] | None = None,
            **options: object) -> str:
    with pytest.raises(MediaError) as caught:
        resolve(file_values, defaults, **options)  # type: ignore[arg-type]
    assert caught.value.code == "bad_post_settings"
    return caught.value.message


# ---- lengths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "units"), [("", 0), ("abc", 3), ("é", 1), (CAT, 2), (f"a{CAT}b", 4),
                                             ("\u4e2d\u6587", 2)])
def test_utf16_len_counts_code_units_like_tiktok(text: str, units: int) -> None:
    assert postsettings.utf16_len(text) == units


@pytest.mark.parametrize(("kind", "key", "limit"), [
    (Kind.VIDEO, "title", 2200), (Kind.PHOTO, "title", 90), (Kind.PHOTO, "description", 4000),
])
def test_each_length_limit_holds_exactly_at_its_boundary(kind: Kind, key: str, limit: int) -> None:
    assert getattr(resolve({key: "x" * limit}, kind=kind), key) == "x" * limit

    message = refusal({key: "x" * (limit + 1)}, kind=kind)

    assert message == f"clip.yaml: '{key}': {limit + 1} UTF-16 units, TikTok allows {limit}"


def test_an_emoji_counts_two_toward_the_limit() -> None:
    """89 letters and one emoji are 91 units: one too many for a photo title."""
    assert resolve({"title": "x" * 88 + CAT}, kind=Kind.PHOTO).title == "x" * 88 + CAT

    assert "91 UTF-16 units, TikTok allows 90" in refusal({"title": "x" * 89 + CAT}, kind=Kind.PHOTO)


# ---- keys and values -----------------------------------------------------------------------------


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    assert refusal({"titel": "hi"}) == "clip.yaml: 'titel': unknown key (did you mean 'title'?)"


def test_bad_privacy_level_lists_the_choices() -> None:
    assert refusal({"privacy_level": "PRIVATE"}) == (
        "clip.yaml: 'privacy_level': must be one of PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, "
        "FOLLOWER_OF_CREATOR, SELF_ONLY, got 'PRIVATE'")


@pytest.mark.parametrize("value", ["false", "no", 0, 1, "true"])
def test_flags_must_be_real_booleans(value: object) -> None:
    assert refusal({"is_aigc": value}).startswith("clip.yaml: 'is_aigc': must be true or false, got ")


@pytest.mark.parametrize("value", [-1, 1.5, "1000", True, 2**31])
def test_counts_must_be_whole_numbers_from_zero(value: object) -> None:
    assert "'video_cover_timestamp_ms': must be a whole number, 0 or more" in refusal(
        {"video_cover_timestamp_ms": value})


def test_title_must_be_text() -> None:
    assert refusal({"title": 2024}) == "clip.yaml: 'title': must be text (put it in quotes), got 2024"


def test_every_problem_is_reported_together() -> None:
    message = refusal({"titel": "x", "is_aigc": "yes", "privacy_level": "ME"})

    assert message.count("clip.yaml: ") == 3


def test_a_null_value_counts_as_not_given() -> None:
    settings = resolve({"title": None}, {"title": "from defaults"})

    assert settings.title == "from defaults"
    assert refusal({"titel": None}) == "clip.yaml: 'titel': unknown key (did you mean 'title'?)"


# ---- kinds and modes -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(postsettings.VIDEO_ONLY))
def test_video_only_keys_in_a_photo_settings_file_are_refused(key: str) -> None:
    value = 1000 if key == "video_cover_timestamp_ms" else True

    assert refusal({key: value}, kind=Kind.PHOTO, source_name="post.yaml") == (
        f"post.yaml: '{key}' applies to video posts only, this is a photo post")


@pytest.mark.parametrize("key", sorted(postsettings.PHOTO_ONLY))
def test_photo_only_keys_in_a_video_settings_file_are_refused(key: str) -> None:
    value = {"description": "text", "photo_cover_index": 1, "auto_add_music": True}[key]

    assert refusal({key: value}) == f"clip.yaml: '{key}' applies to photo posts only, this is a video post"


def test_other_kinds_keys_in_account_defaults_are_ignored() -> None:
    """One account posts both kinds, so its defaults may hold keys for either."""
    defaults = {"disable_duet": True, "description": "about us", "auto_add_music": True}

    video = resolve(defaults=defaults)
    photo = resolve(defaults=defaults, kind=Kind.PHOTO)

    assert (video.disable_duet, video.description, video.auto_add_music) == (True, None, False)
    assert (photo.disable_duet, photo.description, photo.auto_add_music) == (False, "about us", True)


def test_privacy_level_is_required_for_direct_posts() -> None:
    assert refusal(mode=Mode.DIRECT, source_name=None).startswith(
        "post settings: privacy_level is required for direct posts: one of PUBLIC_TO_EVERYONE, ")
    assert resolve(mode=Mode.INBOX).privacy_level is None
    assert resolve(defaults={"privacy_level": "SELF_ONLY"}, mode=Mode.DIRECT).privacy_level == "SELF_ONLY"


def test_a_bad_privacy_level_is_not_also_reported_as_missing() -> None:
    assert "required" not in refusal({"privacy_level": "ME"}, mode=Mode.DIRECT)


# ---- defaults and files --------------------------------------------------------------------------


def test_file_values_win_over_defaults_key_by_key() -> None:
    settings = resolve({"title": "from file", "is_aigc": False},
                       {"title": "from defaults", "is_aigc": True, "disable_comment": True})

    assert (settings.title, settings.is_aigc, settings.disable_comment) == ("from file", False, True)
    assert settings.source_file == "clip.yaml"


def test_a_bad_default_is_blamed_on_the_defaults_not_the_file() -> None:
    message = refusal({"title": "ok"}, {"description": "x" * 4001}, kind=Kind.PHOTO)

    assert message == "account defaults: 'description': 4001 UTF-16 units, TikTok allows 4000"


def test_check_keys_and_values_reports_config_key_paths() -> None:
    problems = postsettings.check_keys_and_values(
        {"privacy_level": "ME", "titel": "x", "disable_duet": True, "description": "d", "publish_at": None},
        "accounts.alice.defaults")

    assert problems == [
        "at 'accounts.alice.defaults.privacy_level': must be one of PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, "
        "FOLLOWER_OF_CREATOR, SELF_ONLY, got 'ME'",
        "at 'accounts.alice.defaults.titel': unknown key (did you mean 'title'?)",
    ]


# ---- publish_at ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "2026-12-01T18:00:00+01:00", "2026-12-01T17:00:00Z", "2026-12-01 17:00:00+00:00",
    datetime(2026, 12, 1, 17, 0, tzinfo=UTC),
])
def test_publish_at_becomes_aware_utc(value: object) -> None:
    publish_at = resolve({"publish_at": value}).publish_at

    assert publish_at == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert publish_at is not None and publish_at.utcoffset() is not None
    assert publish_at.tzinfo is UTC


def test_publish_at_without_an_offset_is_wall_clock_time_in_the_zone() -> None:
    """The zone is the config's (tests/test_local_times.py covers named zones and daylight saving); here UTC."""
    assert resolve({"publish_at": "2026-12-01T18:00:00"}).publish_at == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01T00:00:00Z", 1764608400])
def test_publish_at_that_is_not_a_time_is_refused(value: object) -> None:
    assert "'publish_at': must be a date and time like" in refusal({"publish_at": value})


def test_unquoted_yaml_times_and_dates_are_handled(fs: FakeFilesystem) -> None:
    """YAML turns unquoted timestamps into datetimes (aware with an offset) and a bare date into a date."""
    fs.create_file("/in/a.yaml", contents="publish_at: 2026-12-01T18:00:00+01:00\n")
    fs.create_file("/in/b.yaml", contents="publish_at: 2026-12-01\n")
    fs.create_file("/in/c.yaml", contents="publish_at: 2026-12-01T18:00:00\n")

    good = resolve(postsettings.read_settings_file(Path("/in/a.yaml")))

    assert good.publish_at == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert "got a date without a time" in refusal(postsettings.read_settings_file(Path("/in/b.yaml")))
    local = postsettings.read_settings_file(Path("/in/c.yaml"))  # no offset: wall-clock time in the zone (UTC here)
    assert resolve(local).publish_at == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


# ---- reading settings files ----------------------------------------------------------------------


def test_txt_file_is_the_caption_without_its_trailing_newline(fs: FakeFilesystem) -> None:
    fs.create_file("/in/clip.txt", contents=f"funny cat {CAT} #cats\nsecond line\r\n\n")

    assert postsettings.read_settings_file(Path("/in/clip.txt")) == {"title": f"funny cat {CAT} #cats\nsecond line"}


def test_yaml_file_gives_its_mapping_and_an_empty_file_gives_nothing(fs: FakeFilesystem) -> None:
    fs.create_file("/in/clip.yaml", contents="title: hi\ndisable_comment: true\n")
    fs.create_file("/in/empty.yml", contents="")

    assert postsettings.read_settings_file(Path("/in/clip.yaml")) == {"title": "hi", "disable_comment": True}
    assert postsettings.read_settings_file(Path("/in/empty.yml")) == {}


def test_utf8_byte_order_mark_is_not_part_of_the_caption(fs: FakeFilesystem) -> None:
    fs.create_file("/in/clip.txt", contents=b"\xef\xbb\xbfhello\n")

    assert postsettings.read_settings_file(Path("/in/clip.txt")) == {"title": "hello"}


@pytest.mark.parametrize(("contents", "reason"), [
    (b"title: hi\n  oops: [\n", "clip.yaml: line 2, column 7: not valid YAML"),
    (b"- a\n- b\n", "clip.yaml: must be a mapping of settings like 'title: ...', got list"),
    (b"title: caf\xe9\n", "clip.yaml: not UTF-8 text"),
    (b"title: a\ntitle: b\n", "clip.yaml: line 2, column 1: not valid YAML: the key 'title' is given twice"),
])
def test_unreadable_yaml_is_a_bad_post_settings_error(fs: FakeFilesystem, contents: bytes, reason: str) -> None:
    fs.create_file("/in/clip.yaml", contents=contents)

    with pytest.raises(MediaError) as caught:
        postsettings.read_settings_file(Path("/in/clip.yaml"))

    assert caught.value.code == "bad_post_settings"
    assert caught.value.message.startswith(reason)


# ---- what goes to TikTok and to the sidecar ------------------------------------------------------


def test_video_post_info_in_inbox_mode_is_empty() -> None:
    settings = resolve({"title": "hi", "privacy_level": "SELF_ONLY"})

    assert postsettings.video_post_info(settings, Mode.INBOX) == {}


def test_video_post_info_in_direct_mode_always_carries_the_brand_toggles() -> None:
    minimal = resolve({"privacy_level": "SELF_ONLY"}, mode=Mode.DIRECT)
    full = resolve({"privacy_level": "PUBLIC_TO_EVERYONE", "title": "t", "video_cover_timestamp_ms": 1500,
                    "disable_duet": True, "brand_organic_toggle": True, "is_aigc": True}, mode=Mode.DIRECT)

    assert postsettings.video_post_info(minimal, Mode.DIRECT) == {
        "privacy_level": "SELF_ONLY", "disable_comment": False, "disable_duet": False, "disable_stitch": False,
        "brand_content_toggle": False, "brand_organic_toggle": False, "is_aigc": False}
    assert postsettings.video_post_info(full, Mode.DIRECT) == {
        "privacy_level": "PUBLIC_TO_EVERYONE", "title": "t", "disable_comment": False, "disable_duet": True,
        "disable_stitch": False, "video_cover_timestamp_ms": 1500, "brand_content_toggle": False,
        "brand_organic_toggle": True, "is_aigc": True}


def test_photo_post_info_for_both_modes() -> None:
    settings = resolve({"title": "trip", "privacy_level": "SELF_ONLY", "auto_add_music": True,
                        "photo_cover_index": 2}, kind=Kind.PHOTO, mode=Mode.DIRECT)

    assert postsettings.photo_post_info(settings, Mode.INBOX) == {"title": "trip", "description": ""}
    assert postsettings.photo_post_info(settings, Mode.DIRECT) == {
        "title": "trip", "description": "", "privacy_level": "SELF_ONLY", "disable_comment": False,
        "auto_add_music": True, "brand_content_toggle": False, "brand_organic_toggle": False}


def test_as_dict_is_json_ready_and_from_dict_restores_it() -> None:
    settings = resolve({"title": f"hi {CAT}", "publish_at": "2026-12-01T18:00:00+01:00", "disable_duet": True})

    data = json.loads(json.dumps(postsettings.as_dict(settings)))

    assert data["publish_at"] == "2026-12-01T17:00:00Z"
    assert data["source_file"] == "clip.yaml"
    assert postsettings.from_dict(data) == settings
