"""Video init, direct (/video/init/) and inbox (/inbox/video/init/): the chunk rules, post_info checks,
scopes, and every error code these endpoints can return."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from emulator_support import Api, error_of

from tests.emulator_fixture import MediaServer, fake_video
from watchfolder.emulator import Emulator, User

MIB = 1024 * 1024


def source(size: int, chunk: int, count: int) -> dict[str, object]:
    return {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": count}


def test_direct_file_upload_init_returns_an_opaque_upload_url(emulator: Emulator, api: Api) -> None:
    answer = api.direct_file(1000, title="hello #cats")
    body = answer.json()
    assert answer.status_code == 200 and body["error"]["code"] == "ok" and body["error"]["log_id"]
    publish_id, upload_url = body["data"]["publish_id"], body["data"]["upload_url"]
    assert publish_id.startswith("v_pub_file~v2-1.") and len(publish_id) <= 64
    parts = urlsplit(upload_url)
    assert f"{parts.scheme}://{parts.netloc}" == emulator.base_url and len(upload_url) <= 256
    assert set(parse_qs(parts.query)) == {"upload_id", "upload_token"}
    record = emulator.records.publish(publish_id)
    assert (record.kind, record.mode, record.source, record.declared_size) == ("video", "direct", "FILE_UPLOAD", 1000)
    assert record.post_info == {"title": "hello #cats", "privacy_level": "SELF_ONLY"}
    assert record.status == "PROCESSING_UPLOAD"


def test_inbox_file_upload_init_accepts_and_records_an_undocumented_post_info(emulator: Emulator,
                                                                             api: Api) -> None:
    answer = api.post("inbox_init", {"post_info": {"title": "draft"}, "source_info": source(2000, 2000, 1)})
    data = answer.json()["data"]
    assert answer.status_code == 200 and data["publish_id"].startswith("v_inbox_file~v2.")
    assert "upload_url" in data
    assert emulator.records.publish(data["publish_id"]).post_info == {"title": "draft"}


@pytest.mark.parametrize(("endpoint", "prefix"), [("video_init", "v_pub_url~v2."),
                                                  ("inbox_init", "v_inbox_url~v2.")])
def test_pull_from_url_init_returns_only_a_publish_id(emulator: Emulator, api: Api, media: MediaServer,
                                                     endpoint: str, prefix: str) -> None:
    emulator.config.verified_url_prefixes.append(media.base_url + "/")
    url = media.add("/v.mp4", fake_video(4096))
    answer = api.post(endpoint, {"post_info": {"privacy_level": "SELF_ONLY"},
                                 "source_info": {"source": "PULL_FROM_URL", "video_url": url}})
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["data"]) == ["publish_id"]
    assert answer.json()["data"]["publish_id"].startswith(prefix)


# TikTok's own examples and each chunk rule at its edge (reference §2.1).
ACCEPTED = [
    pytest.param(50_000_123, 10_000_000, 5, id="tiktok-example-50000123-in-5"),
    pytest.param(4 * MIB, 4 * MIB, 1, id="tiktok-example-4MiB-whole"),
    pytest.param(1, 1, 1, id="one-byte"),
    pytest.param(5 * MIB, 5 * MIB, 1, id="5MiB-one-chunk"),
    pytest.param(64_000_000, 64_000_000, 1, id="64MB-one-chunk"),
    pytest.param(128_000_000, 64_000_000, 2, id="two-max-chunks"),
    pytest.param(12_000_000, 5 * MIB, 2, id="min-chunk-final-absorbs-rest"),
    pytest.param(4_000_000_000, 40_000_000, 100, id="4GB"),
]
REFUSED = [
    pytest.param(3_000_000, 1_000_000, 3, id="3MB-in-chunks"),
    pytest.param(3_000_000, 3_000_000, 2, id="3MB-two-declared"),
    pytest.param(50_000_123, 10_000_000, 6, id="count-not-floor"),
    pytest.param(50_000_123, 10_000_000, 4, id="count-floor-minus-one"),
    pytest.param(20_000_000, 5 * MIB - 1, 3, id="chunk-under-5MiB"),
    pytest.param(200_000_000, 64_000_001, 3, id="chunk-over-64MB"),
    pytest.param(100_000_000, 60_000_000, 1, id="over-64MB-in-one-chunk"),
    pytest.param(4_000_000_001, 40_000_000, 100, id="over-4GB"),
    pytest.param(0, 0, 1, id="empty"),
    pytest.param(6 * MIB, 7 * MIB, 0, id="chunk-bigger-than-video"),
]


@pytest.mark.parametrize(("size", "chunk", "count"), ACCEPTED)
def test_chunk_plans_tiktok_accepts(api: Api, size: int, chunk: int, count: int) -> None:
    assert api.inbox_file(size, chunk, count).status_code == 200


@pytest.mark.parametrize(("size", "chunk", "count"), REFUSED)
def test_chunk_plans_tiktok_refuses(api: Api, size: int, chunk: int, count: int) -> None:
    answer = api.inbox_file(size, chunk, count)
    assert error_of(answer) == (400, "invalid_params")
    assert "invalid" in answer.json()["error"]["message"]


def test_1001_chunks_are_refused_even_where_the_size_is_allowed(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(max_video_bytes=10**10)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    assert api.inbox_file(1000 * 5 * MIB, 5 * MIB, 1000).status_code == 200
    assert error_of(api.inbox_file(1001 * 5 * MIB, 5 * MIB, 1001)) == (400, "invalid_params")
    # With the default 4 GB cap, 1001 chunks of 5 MiB are refused for their size as well.
    emu_default = Api(emu.base_url or "", emu.add_user("bob").access_token)
    assert emu_default.inbox_file(1001 * 5 * MIB, 5 * MIB, 1001).status_code == 400


def test_a_final_chunk_over_128MB_is_refused(make_emulator: Callable[..., Emulator]) -> None:
    """With 64 MB chunks the final chunk is always under 128 MB; allowing bigger chunks shows the rule."""
    emu = make_emulator(max_chunk_bytes=100_000_000)
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    assert api.inbox_file(228_000_000, 100_000_000, 2).status_code == 200  # final 128,000,000
    answer = api.inbox_file(228_000_001, 100_000_000, 2)
    assert error_of(answer) == (400, "invalid_params") and "final chunk" in answer.json()["error"]["message"]


@pytest.mark.parametrize("bad", [{"video_size": "1000"}, {"chunk_size": 1000.0}, {"total_chunk_count": True},
                                 {"video_size": None}])
def test_sizes_must_be_json_integers(api: Api, bad: dict[str, object]) -> None:
    info = {**source(1000, 1000, 1), **bad}
    assert error_of(api.post("inbox_init", {"source_info": info})) == (400, "invalid_params")


@pytest.mark.parametrize("body", [
    {"source_info": {"source": "BLUETOOTH"}},
    {"source_info": {"source": "PULL_FROM_URL"}},
    {},
    {"source_info": "FILE_UPLOAD"},
])
def test_bad_source_info_is_invalid_params(api: Api, body: dict[str, object]) -> None:
    assert error_of(api.post("inbox_init", body)) == (400, "invalid_params")


def test_a_body_that_is_not_json_is_invalid_params(emulator: Emulator, alice: User) -> None:
    answer = requests.post(f"{emulator.base_url}/v2/post/publish/video/init/", data=b"{nope", timeout=5,
                           headers={"Authorization": f"Bearer {alice.access_token}",
                                    "Content-Type": "application/json"})
    assert error_of(answer) == (400, "invalid_params")


def test_the_bad_parameter_code_can_be_spelled_as_the_reference_tables_do(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(invalid_param_code="invalid_param")
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    assert error_of(api.inbox_file(3_000_000, 1_000_000, 3)) == (400, "invalid_param")


def test_title_length_is_counted_in_utf16_units(api: Api) -> None:
    """An emoji is two UTF-16 units: 1100 of them fill the 2200 limit although len() says 1100."""
    assert api.direct_file(100, title="😀" * 1100).status_code == 200
    assert error_of(api.direct_file(100, title="😀" * 1100 + "a")) == (400, "invalid_params")
    assert api.direct_file(100, title="a" * 2200).status_code == 200
    assert error_of(api.direct_file(100, title="a" * 2201)) == (400, "invalid_params")


@pytest.mark.parametrize("bad", [{"disable_comment": "no"}, {"video_cover_timestamp_ms": "1000"},
                                 {"title": 5}, {"is_aigc": 1}])
def test_post_info_fields_must_have_their_json_types(api: Api, bad: dict[str, object]) -> None:
    assert error_of(api.direct_file(100, **bad)) == (400, "invalid_params")


@pytest.mark.parametrize("privacy", [None, "PUBLIC", "FOLLOWER_OF_CREATOR"])
def test_privacy_level_must_be_one_of_the_creators_options(api: Api, privacy: str | None) -> None:
    """alice's account is public: FOLLOWER_OF_CREATOR is only offered to private accounts."""
    assert error_of(api.direct_file(100, privacy=privacy)) == (403, "privacy_level_option_mismatch")


def test_private_account_may_not_post_public(emulator: Emulator) -> None:
    user = emulator.add_user("priv", private_account=True)
    api = Api(emulator.base_url or "", user.access_token)
    assert error_of(api.direct_file(100, privacy="PUBLIC_TO_EVERYONE")) == (403, "privacy_level_option_mismatch")
    assert api.direct_file(100, privacy="FOLLOWER_OF_CREATOR").status_code == 200


def test_unverified_or_plain_http_video_urls_are_refused(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(require_https_urls=True, verified_url_prefixes=["https://media.example.com/tiktok/"])
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)

    def init(endpoint: str, url: str) -> tuple[int, str]:
        return error_of(api.post(endpoint, {"post_info": {"privacy_level": "SELF_ONLY"},
                                            "source_info": {"source": "PULL_FROM_URL", "video_url": url}}))

    for endpoint in ("video_init", "inbox_init"):
        assert init(endpoint, "https://evil.example.com/x.mp4") == (403, "url_ownership_unverified")
        assert init(endpoint, "https://media.example.com/other/x.mp4") == (403, "url_ownership_unverified")
        assert init(endpoint, "http://media.example.com/tiktok/x.mp4") == (403, "url_ownership_unverified")
        assert init(endpoint, "not a url") == (403, "url_ownership_unverified")
    assert emu.records.publishes == []  # a refused init starts no download


@pytest.mark.parametrize(("url", "verified"), [
    ("https://media.example.com/tiktok/a/b.mp4", True),
    ("https://media.example.com/tiktok-other/b.mp4", False),
    ("https://video.cdn.example.org/x.mp4", True),
    ("https://cdn.example.org/x.mp4", True),
    ("https://example.org/x.mp4", False),
    ("https://evilcdn.example.org.attacker.net/x.mp4", False),
])
def test_url_properties_cover_prefixes_and_subdomains(url: str, verified: bool) -> None:
    """Checked without HTTP: a verified URL would make the emulator start a real download."""
    from watchfolder.emulator.config import EmulatorConfig
    from watchfolder.emulator.envelope import ApiError
    from watchfolder.emulator.validate import check_url

    config = EmulatorConfig(verified_url_prefixes=["https://media.example.com/tiktok/", "domain:cdn.example.org"])
    if verified:
        check_url(url, config)
    else:
        with pytest.raises(ApiError) as refused:
            check_url(url, config)
        assert refused.value.code == "url_ownership_unverified"


def test_scopes_per_endpoint(emulator: Emulator) -> None:
    uploader = Api(emulator.base_url or "", emulator.add_user("up", scopes=("video.upload",)).access_token)
    publisher = Api(emulator.base_url or "", emulator.add_user("pub", scopes=("video.publish",)).access_token)
    assert error_of(uploader.direct_file(100)) == (401, "scope_not_authorized")
    assert error_of(publisher.inbox_file(100)) == (401, "scope_not_authorized")
    assert uploader.inbox_file(100).status_code == 200 and publisher.direct_file(100).status_code == 200


@pytest.mark.parametrize("endpoint", ["video_init", "inbox_init"])
def test_missing_unknown_and_expired_tokens_are_access_token_invalid(emulator: Emulator, alice: User,
                                                                     endpoint: str) -> None:
    body = {"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": source(100, 100, 1)}
    assert error_of(Api(emulator.base_url or "", None).post(endpoint, body)) == (401, "access_token_invalid")
    assert error_of(Api(emulator.base_url or "", "act.x").post(endpoint, body)) == (401, "access_token_invalid")
    emulator.expire_access_token(alice.open_id)
    assert error_of(Api(emulator.base_url or "", alice.access_token).post(endpoint, body)) == \
        (401, "access_token_invalid")


def test_banned_user_cannot_init(emulator: Emulator, alice: User, api: Api) -> None:
    alice.banned = True
    assert error_of(api.direct_file(100)) == (403, "spam_risk_user_banned_from_posting")
    assert error_of(api.inbox_file(100)) == (403, "spam_risk_user_banned_from_posting")


def test_brand_toggles_are_optional_by_default_and_required_when_asked(
        api: Api, make_emulator: Callable[..., Emulator]) -> None:
    assert api.direct_file(100).status_code == 200
    strict = make_emulator(require_brand_toggles=True)
    strict_api = Api(strict.base_url or "", strict.add_user("alice").access_token)
    assert error_of(strict_api.direct_file(100)) == (400, "invalid_params")
    assert strict_api.direct_file(100, brand_content_toggle=False, brand_organic_toggle=False).status_code == 200


def test_branded_self_only_can_be_refused(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(branded_self_only="reject")
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    assert error_of(api.direct_file(100, brand_content_toggle=True)) == (400, "invalid_params")
    assert api.direct_file(100, privacy="PUBLIC_TO_EVERYONE", brand_content_toggle=True).status_code == 200


def test_unknown_fields_are_ignored_or_refused_by_option(api: Api, make_emulator: Callable[..., Emulator]) -> None:
    assert api.direct_file(100, disable_comments=True).status_code == 200
    strict = make_emulator(reject_unknown_fields=True)
    strict_api = Api(strict.base_url or "", strict.add_user("alice").access_token)
    answer = strict_api.direct_file(100, disable_comments=True)
    assert error_of(answer) == (400, "invalid_params") and "disable_comments" in answer.json()["error"]["message"]


def test_inbox_post_info_can_be_refused(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(inbox_post_info="reject")
    api = Api(emu.base_url or "", emu.add_user("alice").access_token)
    assert error_of(api.post("inbox_init", {"post_info": {"title": "x"}, "source_info": source(100, 100, 1)})) == \
        (400, "invalid_params")
    assert api.inbox_file(100).status_code == 200


@pytest.mark.parametrize(("data_on_error", "keys"), [(True, {"data", "error"}), (False, {"error"})])
def test_refusals_carry_empty_data_or_none(make_emulator: Callable[..., Emulator], data_on_error: bool,
                                           keys: set[str]) -> None:
    emu = make_emulator(data_on_error=data_on_error)
    answer = Api(emu.base_url or "", "act.x").post("creator_info")
    assert answer.status_code == 401 and set(answer.json()) == keys
