"""Running as a service: the shipped systemd unit (what the issue asks of it, a comment on every line, agreement
with the program's own numbers and the example config, `systemd-analyze verify`), and the Docker image's
entrypoint run here as it runs in the image (privileges dropped to PUID:PGID, UMASK, the health check)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests import privdrop
from tests.harness import Rig, wait_for
from watchfolder.config.settings import TikTokSettings
from watchfolder.media import samples
from watchfolder.ops import health

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "watchfolder.service"


def directives() -> list[tuple[str, str, str, list[str]]]:
    """Return (section, key, value, the comment lines right above it) for every directive, in order."""
    found, section, comments = [], "", []
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            comments = []
        elif stripped.startswith("#"):
            comments.append(stripped)
        elif stripped.startswith("["):
            section, comments = stripped.strip("[]"), []
        else:
            key, _, value = stripped.partition("=")
            found.append((section, key, value, comments))
            comments = []
    return found


def values(key: str) -> list[str]:
    return [value for _, name, value, _ in directives() if name == key]


def seconds(key: str) -> int:
    (value,) = values(key)
    return int(value)


def test_every_directive_has_its_own_comment():
    bare = [f"[{section}] {key}={value}" for section, key, value, comments in directives() if not comments]
    assert bare == []


def test_notify_watchdog_restart_and_stop_timeout_match_the_program():
    assert values("Type") == ["notify"] and values("NotifyAccess") == ["main"]
    assert values("Restart") == ["on-failure"]
    # The watchdog must outlast the health rule's own idea of a hung loop, or a slow pass would kill it.
    assert seconds("WatchdogSec") > health.LOOP_STALE_SECONDS
    # On SIGTERM the daemon waits for the chunk in flight: one HTTP timeout, then 5 s for the workers.
    assert seconds("TimeoutStopSec") > TikTokSettings.__dataclass_fields__["timeout_seconds"].default + 5
    (start,) = values("ExecStart")
    assert start.split()[1:] == ["run", "-c", "/etc/watchfolder/config.yaml"]


def test_hardening_covers_the_root_and_the_state_and_the_credential():
    example = yaml.safe_load((REPO / "config.example.yaml").read_text(encoding="utf-8"))
    root, state_dir = example["root"], example["state_dir"]
    assert values("ProtectSystem") == ["strict"]
    assert values("NoNewPrivileges") == ["yes"] and values("PrivateTmp") == ["yes"]
    (writable,) = values("ReadWritePaths")
    assert set(writable.split()) == {root, state_dir}
    assert values("RequiresMountsFor") == [root]
    assert values("StateDirectory") == [Path(state_dir).name] and state_dir.startswith("/var/lib/")
    assert values("LoadCredential") == ["client_secret:/etc/watchfolder/client_secret"]
    assert "AF_UNIX" in values("RestrictAddressFamilies")[0], "sd_notify needs a unix datagram socket"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    # verify insists that ExecStart names an executable that exists: point it at this environment's script.
    script = Path(sys.executable).parent / "watchfolder"
    assert script.exists()
    copy = tmp_path / "watchfolder.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/watchfolder/bin/watchfolder", str(script)),
                    encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60,
                            check=False)
    # verify exits 0 even for unknown keys and unparsable values; it only warns, so any output is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# ---- the Docker image's entrypoint (no Docker engine is needed: the script runs here as it would in the image) ----

ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
PUID, PGID = 12345, 12346
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                             reason="dropping privileges needs root and setpriv (util-linux)")


def shared_folder() -> Path:
    """A folder other users can reach (pytest's tmp_path is private to its owner)."""
    base = Path(tempfile.mkdtemp(prefix="wfdock"))
    os.chmod(base, 0o755)  # noqa: S103 - PUID must reach the config and folders inside
    return base


def entrypoint(*command: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *command], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def base_env(**extra: str) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    return {**os.environ, "PATH": path, **extra}


# A command every user may run (a Python under /root would not be): who am I, which groups, which umask, home.
SHOW_IDS = ["sh", "-c", 'echo "$(id -u) $(id -g) groups=$(id -G) $(umask) $HOME"']


@AS_ROOT
def test_entrypoint_runs_the_command_as_puid_pgid_with_umask_and_owns_only_the_state():
    base = shared_folder()
    try:
        state, media = base / "state", base / "media"
        state.mkdir()
        (state / "watchfolder.sqlite3").write_bytes(b"")  # left by a run under other ids
        media.mkdir()
        (media / "clip.mp4").write_bytes(b"x")
        result = entrypoint(*SHOW_IDS, env=base_env(PUID=str(PUID), PGID=str(PGID), UMASK="027",
                                                     WATCHFOLDER_STATE=str(state)))
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(PUID), str(PGID), f"groups={PGID}", "0027", str(state)]
        for path in (state, state / "watchfolder.sqlite3"):
            assert (path.stat().st_uid, path.stat().st_gid) == (PUID, PGID)
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert [(p.stat().st_uid, p.stat().st_gid) for p in (media, media / "clip.mp4")] == [(0, 0), (0, 0)], \
            "the media tree is never chowned"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("variables", "said"), [
    ({"PUID": "0"}, "PUID=0 would run watchfolder as root"),
    ({"PGID": "0"}, "PGID=0"),
    ({"PUID": "alice"}, "PUID must be a number"),
    ({"UMASK": "0x22"}, "UMASK must be octal"),
])
def test_entrypoint_refuses_root_ids_and_malformed_values(variables, said, tmp_path):
    if "0" in variables.values() and os.geteuid() != 0:
        pytest.skip("the refusal of root ids applies when the container starts as root")
    env = base_env(**{"PUID": "1000", "PGID": "1000", "WATCHFOLDER_STATE": str(tmp_path / "s"), **variables})
    result = entrypoint("true", env=env)
    assert result.returncode == 2 and said in result.stderr


@AS_ROOT
def test_entrypoint_started_as_another_user_only_sets_the_umask(tmp_path):
    base = shared_folder()   # the checkout may be out of that user's reach (a clone in a mode-700 folder)
    try:
        script = base / "entrypoint.sh"
        shutil.copy(ENTRYPOINT, script)
        script.chmod(0o755)
        env = base_env(UMASK="077", WATCHFOLDER_STATE=str(tmp_path / "untouched"), HOME="/nonexistent")
        result = subprocess.run(["setpriv", "--reuid=23456", "--regid=23456", "--clear-groups", "sh", str(script),
                                 *SHOW_IDS], capture_output=True, text=True, env=env, timeout=30, check=False,
                                cwd=base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["23456", "23456", "groups=23456", "0077", "/nonexistent"]
    assert not (tmp_path / "untouched").exists()


@AS_ROOT
def test_the_daemon_under_the_entrypoint_finishes_a_drop_as_puid_pgid_and_reports_health(emulator):
    base = shared_folder()
    try:
        python, python_env = privdrop.portable_python(base / "program", PUID, PGID)
        port = _free_port()
        rig = Rig(base, emulator, overrides={"metrics.listen": f"127.0.0.1:{port}"})  # tokens written as root
        os.chown(rig.root, PUID, PGID)  # the share belongs to the NAS user
        rig.config_path.chmod(0o644)
        env = base_env(PUID=str(PUID), PGID=str(PGID), UMASK="022", WATCHFOLDER_STATE=str(rig.state_dir),
                       WATCHFOLDER_CONFIG=str(rig.config_path), WATCHFOLDER_HEALTHZ=f"http://127.0.0.1:{port}/healthz",
                       WATCHFOLDER_HEALTHZ_TIMEOUT="2", **rig.env, **python_env)
        daemon = subprocess.Popen(["sh", str(ENTRYPOINT), *python, "-m", "watchfolder", "run"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=base)
        try:
            wait_for(lambda: entrypoint("healthcheck", env=env).returncode == 0, 20, what="a healthy container")
            samples.write_mp4(base / "clip.mp4", size=300_000)
            rig.drop("alice", "clip.mp4", base / "clip.mp4")
            sidecar = rig.wait_sidecar("alice", "clip.mp4")
            assert sidecar["result"] == "done"
            owned = [rig.folder("alice", "done") / "clip.mp4.json", rig.folder("alice", "done"), rig.root / "alice",
                     rig.state_dir / "watchfolder.sqlite3"]
            assert {(p.stat().st_uid, p.stat().st_gid) for p in owned} == {(PUID, PGID)}
            assert stat.S_IMODE(owned[0].stat().st_mode) == 0o644

            fallback = {**env, "WATCHFOLDER_HEALTHZ": f"http://127.0.0.1:{_free_port()}/healthz"}
            assert entrypoint("healthcheck", env=fallback).returncode == 0, "judged by the heartbeat"
            daemon.send_signal(signal.SIGSTOP)  # a process that hangs: /healthz takes the connection, never answers
            try:
                hung = entrypoint("healthcheck", env=env)
                assert hung.returncode == 1 and "no answer" in hung.stdout
            finally:
                daemon.send_signal(signal.SIGCONT)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
            daemon.communicate(timeout=10)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_image_and_compose_example_agree_with_the_entrypoint_and_the_unit():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
        assert all((REPO / part).exists() for part in source.split()), source
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, flags=re.MULTILINE)
    assert 'CMD ["watchfolder-entrypoint", "healthcheck"]' in dockerfile
    assert "chown -R" not in dockerfile + ENTRYPOINT.read_text(encoding="utf-8")
    compose = yaml.safe_load((REPO / "docker" / "compose.example.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["watchfolder"]
    assert {"PUID", "PGID", "UMASK"} <= set(service["environment"])
    assert "watchfolder-state:/state" in service["volumes"], "the state lives on a local named volume"
    assert int(service["stop_grace_period"].rstrip("s")) >= seconds("TimeoutStopSec")
    assert service["healthcheck"]["test"] == ["CMD", "watchfolder-entrypoint", "healthcheck"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed here")
def test_the_entrypoint_passes_shellcheck():
    result = subprocess.run(["shellcheck", str(ENTRYPOINT)], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
