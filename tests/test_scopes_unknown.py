"""Tokens imported without --scope: scopes unknown (not none); check says so; the first accepted init records them."""

from __future__ import annotations

from watchfolder import cli
from watchfolder.media import samples
from watchfolder.tiktok.tokens import TokenStore

from .test_check import run_check


def test_unknown_scopes_pass_check_and_the_first_upload_records_them(make_rig, tmp_path, capsys):
    rig = make_rig(sign_in=False)
    user = rig.emulator.add_user("alice", scopes=("user.info.basic", "video.upload"))
    code = cli.main(["auth", "import", "alice", "-c", str(rig.config_path), "--access-token", user.access_token,
                     "--refresh-token", user.refresh_token, "--open-id", user.open_id])
    assert code == 0
    assert TokenStore(rig.state_dir).load("alice").scopes == ()
    assert cli.main(["auth", "list", "-c", str(rig.config_path)]) == 0
    assert "scopes unknown (verified at the first upload)" in capsys.readouterr().out

    code, checks, raw = run_check(rig)
    assert code == 0, raw
    assert checks["scopes:alice"]["status"] == "ok"
    assert checks["scopes:alice"]["message"].startswith("unknown — verified at the first upload")
    assert "none" not in checks["scopes:alice"]["message"]

    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=400_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    assert rig.wait_sidecar("alice", "clip.mp4")["result"] == "done"
    rig.stop()
    assert TokenStore(rig.state_dir).load("alice").scopes == ("video.upload",)
    _, checks, _ = run_check(rig)
    assert checks["scopes:alice"]["message"] == "video.upload granted, as mode inbox needs"


def test_known_scopes_are_left_as_they_are_by_an_upload(make_rig, tmp_path):
    rig = make_rig()
    before = TokenStore(rig.state_dir).load("alice").scopes
    rig.start()
    samples.write_mp4(tmp_path / "clip.mp4", size=400_000)
    rig.drop("alice", "clip.mp4", tmp_path / "clip.mp4")
    rig.wait_sidecar("alice", "clip.mp4")
    rig.stop()
    assert TokenStore(rig.state_dir).load("alice").scopes == before
