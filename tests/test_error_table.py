"""Every code and fail_reason in docs/tiktok-errors.md, injected one at a time, gets the documented handling.

The emulator serves each code it can answer with on the endpoint the table names. A few codes are
watchfolder's own names for answers the emulator cannot produce (an unreadable proxy page, a 416 from a
lost place, an upload URL the server forgot): those are raised once through the publisher seam.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.harness import wait_for
from watchfolder.core.errors import TikTokError
from watchfolder.core.model import State
from watchfolder.daemon import publisher as publish
from watchfolder.emulator.envelope import CODES_OF_ENDPOINT, OAUTH_ERRORS
from watchfolder.media import samples
from watchfolder.store.store import Store
from watchfolder.tiktok import codes

TABLE = Path(__file__).resolve().parents[1] / "docs" / "tiktok-errors.md"


@dataclasses.dataclass(frozen=True)
class Row:
    code: str
    where: str
    action: str
    scope: str
    wait: str


def rows() -> list[Row]:
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            found.append(Row(cells[0].strip("`"), cells[1], cells[2], cells[3], cells[4]))
    return found


ROWS = rows()


def test_the_table_has_every_code():
    assert len(ROWS) >= 45
    assert {row.code for row in ROWS if row.where != "status fail_reason"} == set(codes.POLICY)


def plan(row: Row) -> tuple[str, str]:
    """Return (account mode, how to inject) for a row."""
    if row.where == "status fail_reason":
        return "inbox", "fail_reason"
    if row.code in OAUTH_ERRORS:
        return "inbox", "token"
    if row.code == "internal_error":
        return "inbox", "5xx"
    if row.code == "network_error":
        return "inbox", "drop"
    if row.code in CODES_OF_ENDPOINT["inbox_init"]:
        return "inbox", "inbox_init"
    if row.code in CODES_OF_ENDPOINT["video_init"]:
        return "direct", "video_init"
    if row.code in CODES_OF_ENDPOINT["status"]:
        return "inbox", "status"
    return "inbox", "seam"


def row_id(row: Row) -> str:
    return f"{row.code}-{'reason' if 'fail_reason' in row.where else 'code'}"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_each_code_gets_its_documented_handling(row, make_rig, tmp_path, monkeypatch):
    mode, how = plan(row)
    account = {"mode": mode}
    if mode == "direct":
        account["defaults"] = {"privacy_level": "SELF_ONLY"}
    rig = make_rig(accounts={"alice": account}, overrides={"upload.max_attempts": 3})
    emulator = rig.emulator
    if how == "fail_reason":
        emulator.faults.fail_next_publish(fail_reason=row.code)
    elif how == "token":
        # An access token about to expire makes the daemon refresh first; the refresh meets the error.
        user = rig.users["alice"]
        rig.store_tokens("alice", user.access_token, user.refresh_token, user.open_id,
                         ("user.info.basic", "video.upload", "video.publish"), expires_in=10)
        emulator.faults.fail_next("token", error_code=row.code)
    elif how == "5xx":
        emulator.faults.fail_next("inbox_init", kind="5xx")
    elif how == "drop":
        emulator.faults.fail_next("inbox_init", kind="drop")
    elif how == "seam":
        # Chunk-PUT answers are raised from the chunk step, the rest from the init.
        # file_changed is raised mid-upload too, so the task it abandons is named in the sidecar.
        method = "put_chunk" if row.code.startswith(("upload_", "range_")) or row.code == "file_changed" else "init"
        original = getattr(publish.Publisher, method)
        calls = {"n": 0}

        def once(self, *args, **options):
            calls["n"] += 1
            if calls["n"] == 1:
                policy = codes.for_error(row.code, None)
                raise TikTokError(row.code, "injected", action=policy.action, advice=policy.advice)
            return original(self, *args, **options)

        monkeypatch.setattr(publish.Publisher, method, once)
    else:
        emulator.faults.fail_next(how, error_code=row.code)
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=120_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    expect(row, rig)


def item_of(rig):
    store = Store(rig.state_dir, readonly=True)
    try:
        items = store.items(account="alice")
        return (items[-1] if items else None), store.account_state("alice"), store.runtime("app_wait")
    finally:
        store.close()


def expect(row: Row, rig) -> None:
    if row.action == "fail":
        sidecar = rig.wait_sidecar("alice", "clip.mp4", "failed")
        assert sidecar["error"]["code"] == row.code
        assert sidecar["error"]["message"]
        return
    if row.action in ("retry", "refresh", "reinit"):
        if row.wait == "rate_limit":
            # A 429 parks the item for a minute (TikTok's window); move the shared clock past it.
            wait_for(lambda: (item_of(rig)[0] or None) and item_of(rig)[0].state is State.WAITING, 15,
                     what="the item parked after a 429")
            rig.emulator.clock.advance(120)
        sidecar = rig.wait_sidecar("alice", "clip.mp4", "done")
        states = [event["state"] for event in sidecar["history"]]
        if row.action == "retry":
            assert "waiting" in states
        if row.action == "refresh":
            assert [r for r in rig.emulator.records.refreshes if r.ok]
        if row.action == "reinit":
            # The abandoned upload task is named in the sidecar.
            assert sidecar.get("orphans") or "reinit" in states or states.count("uploading") >= 2
        else:
            assert rig.emulator.records.completed(sidecar["sha256"]) == 1
        return

    def settled():
        item, account, app_wait = item_of(rig)
        return item is not None and item.state is State.WAITING and (account, app_wait)

    account, app_wait = wait_for(settled, 15, what=f"{row.code}: the item waiting")
    item, _, _ = item_of(rig)
    assert not (rig.folder("alice", "failed") / "clip.mp4.json").exists()
    if row.action == "wait":
        assert item.wait_reason == row.wait
        if row.scope == "app":
            assert app_wait is not None and app_wait[0]["code"] == row.code
        else:
            assert account.wait_until and account.wait_until > rig.emulator.clock.now() + 60
            assert account.wait_code == row.code
    elif row.action == "pause":
        if row.scope == "app":
            assert app_wait is not None and app_wait[0]["code"] == row.code
        else:
            assert account.paused_code == row.code
    elif row.action == "reauth":
        assert account.paused_code == "sign_in"
        assert item.wait_reason == "sign_in"
    else:
        raise AssertionError(f"unexpected action {row.action}")
    assert re.match(r"^[a-z_]+$", row.action)
