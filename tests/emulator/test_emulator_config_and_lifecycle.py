"""The emulator's YAML config, its clocks, and starting and stopping it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from emulator_support import PATHS

from watchfolder.emulator import Emulator, EmulatorConfig, EmulatorConfigError, ManualClock, OffsetClock, load_config


def test_yaml_config_sets_fields(tmp_path: Path) -> None:
    path = tmp_path / "emu.yaml"
    path.write_text("client_key: mykey\ninit_per_minute: 2\nprocessing_seconds: 3\n"
                    "verified_url_prefixes: ['https://m.example.com/t/']\ninbox_user_posts_after: null\n"
                    "resend_last_chunk: accept\n")
    config = load_config(path)
    assert config.client_key == "mykey" and config.init_per_minute == 2
    assert config.processing_seconds == 3.0 and isinstance(config.processing_seconds, float)
    assert config.verified_url_prefixes == ["https://m.example.com/t/"]
    assert config.resend_last_chunk == "accept"
    assert config.status_per_minute == 30  # untouched fields keep TikTok's numbers


def test_an_empty_yaml_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "emu.yaml"
    path.write_text("")
    assert load_config(path) == EmulatorConfig()


@pytest.mark.parametrize(("text", "mentions"), [
    ("init_per_minut: 5\n", ["init_per_minut", "unknown key", "init_per_minute"]),
    ("init_per_minute: five\n", ["init_per_minute", "an integer"]),
    ("unaudited: 1\n", ["unaudited", "true or false"]),
    ("verified_url_prefixes: https://x/\n", ["verified_url_prefixes", "list"]),
    ("resend_last_chunk: maybe\n", ["resend_last_chunk", "reject", "accept"]),
    ("upload_url_ttl: 0\n", ["upload_url_ttl", "> 0"]),
    ("- a list\n", ["mapping"]),
    ("a: [unclosed\n", ["cannot read"]),
])
def test_bad_yaml_configs_are_refused_with_the_file_and_the_key(tmp_path: Path, text: str,
                                                               mentions: list[str]) -> None:
    path = tmp_path / "emu.yaml"
    path.write_text(text)
    with pytest.raises(EmulatorConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert str(path) in message
    for word in mentions:
        assert word in message


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmulatorConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_config_checks_values_from_python_too() -> None:
    with pytest.raises(EmulatorConfigError, match="min_chunk_bytes"):
        EmulatorConfig(min_chunk_bytes=70_000_000)
    with pytest.raises(EmulatorConfigError, match="direct_post_daily_cap"):
        EmulatorConfig(direct_post_daily_cap=-1)


def test_manual_clock_moves_only_forward_and_only_when_told() -> None:
    clock = ManualClock(start=1_000.0)
    assert clock.now() == 1_000.0 and clock.now() == 1_000.0
    assert clock.advance(86_400) == 87_400.0 and clock.now() == 87_400.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_offset_clock_is_real_time_plus_what_was_advanced() -> None:
    clock = OffsetClock()
    before = clock.now()
    clock.advance(3_600)
    assert 3_600 <= clock.now() - before < 3_660


def test_default_emulator_reads_real_time_that_advance_can_move() -> None:
    emu = Emulator()
    assert isinstance(emu.clock, OffsetClock)
    assert emu.config == EmulatorConfig()


def test_context_manager_starts_and_stops_and_stop_is_idempotent() -> None:
    with Emulator(EmulatorConfig()) as emu:
        base_url = emu.base_url
        user = emu.add_user("alice")
        answer = requests.post(f"{base_url}{PATHS['creator_info']}", timeout=5,
                               headers={"Authorization": f"Bearer {user.access_token}"})
        assert answer.status_code == 200
        with pytest.raises(RuntimeError):
            emu.start()
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{base_url}{PATHS['creator_info']}", timeout=2)


def test_stop_also_ends_idle_keep_alive_connections() -> None:
    emu = Emulator(EmulatorConfig())
    base_url = emu.start("127.0.0.1", 0)
    user = emu.add_user("alice")
    session = requests.Session()
    headers = {"Authorization": f"Bearer {user.access_token}"}
    assert session.post(f"{base_url}{PATHS['creator_info']}", headers=headers, timeout=5).status_code == 200
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        session.post(f"{base_url}{PATHS['creator_info']}", headers=headers, timeout=2)
    emu.stop()


def test_an_emulator_can_be_started_again_after_stop() -> None:
    emu = Emulator(EmulatorConfig())
    emu.start()
    emu.stop()
    base_url = emu.start()
    try:
        assert requests.get(f"{base_url}/_emulator/health", timeout=5).json()["ok"] is True
    finally:
        emu.stop()


def test_unknown_users_and_publishes_raise_key_error(emulator: Emulator) -> None:
    with pytest.raises(KeyError):
        emulator.revoke("nobody")
    with pytest.raises(KeyError):
        emulator.expire_upload_url("v_inbox_file~v2.1")
    with pytest.raises(KeyError):
        emulator.records.publish("v_inbox_file~v2.1")
    with pytest.raises(ValueError, match="unknown scope"):
        emulator.add_user("x", scopes=("video.everything",))
    emulator.add_user("x")
    with pytest.raises(ValueError, match="exists"):
        emulator.add_user("x")
