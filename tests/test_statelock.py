"""One daemon per state directory, and never a state directory on a network filesystem.

SQLite's locking is what keeps the state consistent, and it is unsafe on NFS, SMB and the like; a
second daemon on the same state would post the same files twice. Both are refused at start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from tests.harness import Rig
from watchfolder import fsinfo
from watchfolder.core.errors import StateLockedError, WatchfolderError
from watchfolder.daemon import wiring
from watchfolder.store import statelock

SCRIPT = Path(sys.executable).with_name("watchfolder")

SAMPLE_MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda2 / ext4 rw,relatime,errors=remount-ro 0 0
/dev/sda3 /srv ext4 rw,relatime 0 0
//nas.local/media /srv/share cifs rw,vers=3.1.1,uid=1000,gid=1000 0 0
/dev/sdb1 /srv/share/local\\040disk ext4 rw,relatime 0 0
nas:/export/state /var/lib/nfs-state nfs4 rw,relatime,vers=4.2 0 0
user@host:/data /home/me/remote fuse.sshfs rw,nosuid,nodev 0 0
//nas/smb3 /mnt/smb smb3 rw 0 0
/dev/mapper/vg-lv /mnt/smb/inner xfs rw 0 0
"""


@pytest.fixture
def mounts() -> list[fsinfo.Mount]:
    return fsinfo.parse_mounts(SAMPLE_MOUNTS)


# ---- one daemon per state_dir ----------------------------------------------------------------------

def test_a_second_lock_on_the_same_state_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = statelock.StateLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(StateLockedError, match=rf"pid {os.getpid()}\).*{tmp_path}"):
            statelock.StateLock(tmp_path).acquire()
    finally:
        first.release()
    again = statelock.StateLock(tmp_path)
    again.acquire()   # free once released
    again.release()


def test_a_daemon_killed_with_sigkill_leaves_no_stale_lock(tmp_path: Path) -> None:
    """The lock is the kernel's (flock), so it dies with its process: a restart after kill -9 gets it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from watchfolder.store import statelock; "
         "statelock.StateLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)",
         str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StateLockedError, match=f"pid {holder.pid}"):
            statelock.StateLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        lock = statelock.StateLock(tmp_path)
        lock.acquire()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_watchfolder_run_on_a_state_dir_in_use_exits_2_before_touching_anything(emulator, tmp_path: Path) -> None:
    """`watchfolder run` while another process holds the state: exit 2, one clear line, no state opened."""
    rig = Rig(tmp_path / "rig", emulator)
    rig.state_dir.mkdir(exist_ok=True)
    (rig.state_dir / "watchfolder.sqlite3").unlink(missing_ok=True)
    lock = statelock.StateLock(rig.state_dir)
    lock.acquire()
    try:
        result = subprocess.run([str(SCRIPT), "run", "-c", str(rig.config_path)], capture_output=True, text=True,
                                env={**os.environ, **rig.env}, timeout=30, check=False)
    finally:
        lock.release()
    assert result.returncode == 2
    assert f"another watchfolder daemon (pid {os.getpid()}) is already running on {rig.state_dir}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (rig.state_dir / "watchfolder.sqlite3").exists()
    assert not (rig.root / "alice").exists()   # not even the account folders were made


# ---- network filesystems ---------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "fs_type", "point"), [
    ("/srv/share/watchfolder", "cifs", "/srv/share"),
    ("/var/lib/nfs-state/watchfolder", "nfs4", "/var/lib/nfs-state"),
    ("/home/me/remote/state", "fuse.sshfs", "/home/me/remote"),
    ("/mnt/smb", "smb3", "/mnt/smb"),
])
def test_a_state_dir_on_a_network_filesystem_is_refused(mounts, path: str, fs_type: str, point: str) -> None:
    with pytest.raises(WatchfolderError) as caught:
        statelock.refuse_network_state(Path(path), allowed=False, mounts=mounts)
    message = str(caught.value)
    assert f"({fs_type} at {point})" in message
    assert "SQLite locking is not safe there" in message and "allow_network_state_dir: true" in message


@pytest.mark.parametrize(("path", "fs_type"), [
    ("/var/lib/watchfolder", "ext4"),                 # the root mount
    ("/srv/state", "ext4"),                           # a longer local mount point wins over /
    ("/srv/share/local disk/state", "ext4"),          # a local disk mounted inside the share (\040 is a space)
    ("/mnt/smb/inner/state", "xfs"),
    ("/srv/shared/state", "ext4"),                    # a name that only starts like the share's mount point
])
def test_a_state_dir_on_a_local_disk_is_accepted(mounts, path: str, fs_type: str) -> None:
    assert statelock.refuse_network_state(Path(path), allowed=False, mounts=mounts) == fs_type


def test_allowing_it_explicitly_accepts_a_network_state_dir(mounts) -> None:
    assert statelock.refuse_network_state(Path("/srv/share/state"), allowed=True, mounts=mounts) == "cifs"


def test_an_unreadable_mount_table_refuses_nothing() -> None:
    assert statelock.refuse_network_state(Path("/srv/share/state"), allowed=False, mounts=[]) is None


def mount_table_for(tmp_path: Path, state_dir: Path, fs_type: str) -> Path:
    """A mount table in which ``state_dir``'s parent is a mount of ``fs_type`` (spaces escaped as the kernel does)."""
    point = os.path.realpath(state_dir.parent).replace(" ", "\\040")
    table = tmp_path / "mounts"
    table.write_text(f"/dev/sda2 / ext4 rw 0 0\n//nas/share {point} {fs_type} rw,vers=3.0 0 0\n")
    return table


def test_watchfolder_run_refuses_a_state_dir_the_mount_table_reports_as_cifs(emulator, tmp_path: Path) -> None:
    """The real command, with /proc/mounts replaced by a sample that puts state_dir on an SMB share."""
    rig = Rig(tmp_path / "my rig", emulator)
    table = mount_table_for(tmp_path, rig.state_dir, "cifs")
    code = ("import sys; from watchfolder import cli, fsinfo; fsinfo.PROC_MOUNTS = (sys.argv[1],); "
            "sys.exit(cli.main(sys.argv[2:]))")
    result = subprocess.run([sys.executable, "-c", code, str(table), "run", "-c", str(rig.config_path)],
                            capture_output=True, text=True, env={**os.environ, **rig.env}, timeout=30, check=False)
    assert result.returncode == 2   # a config value to change, like any other bad config
    assert f"state_dir {rig.state_dir} is on a network filesystem (cifs at {rig.state_dir.parent})" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (rig.state_dir / "watchfolder.sqlite3").exists()


def test_the_daemon_starts_on_a_network_state_dir_when_allowed_and_warns(emulator, tmp_path: Path,
                                                                          monkeypatch) -> None:
    rig = Rig(tmp_path / "rig", emulator, overrides={"allow_network_state_dir": True})
    monkeypatch.setattr(fsinfo, "PROC_MOUNTS", (str(mount_table_for(tmp_path, rig.state_dir, "nfs4")),))
    with structlog.testing.capture_logs() as logs:
        daemon = wiring.build(rig.settings, clock=emulator.clock.now)
        daemon.close()
    warnings = [e for e in logs if e["event"] == "state_dir_on_network_filesystem"]
    assert [w["fs_type"] for w in warnings] == ["nfs4"]
    assert (rig.state_dir / "watchfolder.sqlite3").exists()
    assert _lock_free(rig.state_dir)   # released by close()


def _lock_free(state_dir: Path) -> bool:
    lock = statelock.StateLock(state_dir)
    try:
        lock.acquire()
    except StateLockedError:
        return False
    lock.release()
    return True
