"""Mount table parsing and the watch-method choice: polling on network shares, inotify on local disks."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from watchfolder import fsinfo
from watchfolder.fsinfo import Mount, choose_observer, is_network, mount_for, parse_mounts

SAMPLE = r"""
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
//nas.local/video /srv/tiktok cifs rw,relatime,vers=3.1.1,cache=strict,username=u 0 0
nas:/export/media /srv/nfs3 nfs rw,relatime,vers=3 0 0
nas:/export/media4 /srv/nfs4 nfs4 rw,relatime,vers=4.2 0 0
user@host:/videos /home/u/remote fuse.sshfs rw,nosuid,nodev,relatime,user_id=1000 0 0
/dev/sdb1 /data btrfs rw,relatime,space_cache=v2 0 0
tank/media /tank/media zfs rw,xattr,noacl 0 0
/dev/sdc1 /mnt/xfs xfs rw,relatime 0 0
//nas/My\040Videos /mnt/My\040Share cifs rw 0 0
/dev/sdd1 /srv/tiktok/alice/inbox ext4 rw 0 0
"""


def test_parse_mounts_reads_every_line_and_decodes_octal_escapes() -> None:
    mounts = parse_mounts(SAMPLE)
    assert len(mounts) == 11
    assert mounts[2] == Mount(mount_point="/srv/tiktok", fs_type="cifs", source="//nas.local/video")
    assert mounts[9] == Mount(mount_point="/mnt/My Share", fs_type="cifs", source="//nas/My Videos")


def test_parse_mounts_skips_blank_comment_and_short_lines() -> None:
    assert parse_mounts("\n# comment line here\nnonsense\n/dev/x /y ext4 rw 0 0\n") == [Mount("/y", "ext4", "/dev/x")]


@pytest.mark.parametrize(
    ("path", "method", "fs_type"),
    [("/srv/tiktok/bob/inbox", "polling", "cifs"),
     ("/srv/nfs3/alice/inbox", "polling", "nfs"),
     ("/srv/nfs4/alice/inbox", "polling", "nfs4"),
     ("/home/u/remote/inbox", "polling", "fuse.sshfs"),
     ("/mnt/My Share/inbox", "polling", "cifs"),
     ("/home/u/local/inbox", "inotify", "ext4"),
     ("/data/alice/inbox", "inotify", "btrfs"),
     ("/tank/media/inbox", "inotify", "zfs"),
     ("/mnt/xfs/inbox", "inotify", "xfs")],
)
def test_auto_polls_network_shares_and_uses_inotify_on_local_disks(path: str, method: str, fs_type: str) -> None:
    chosen, reason = choose_observer("auto", Path(path), parse_mounts(SAMPLE))
    assert chosen == method
    assert fs_type in reason


def test_longest_mount_point_wins() -> None:
    mounts = parse_mounts(SAMPLE)
    assert mount_for(Path("/srv/tiktok/alice/inbox/clip.mp4"), mounts).fs_type == "ext4"  # type: ignore[union-attr]
    assert mount_for(Path("/srv/tiktok/alice"), mounts).fs_type == "cifs"  # type: ignore[union-attr]
    assert mount_for(Path("/srv/tiktokfoo"), mounts).mount_point == "/", "a prefix must end at a /"  # type: ignore[union-attr]


def test_the_later_of_two_mounts_on_one_point_is_on_top() -> None:
    mounts = parse_mounts("/dev/sda1 / ext4 rw 0 0\nauto.nas /nas autofs rw 0 0\n//nas/share /nas cifs rw 0 0\n")
    assert mount_for(Path("/nas/x"), mounts) == Mount("/nas", "cifs", "//nas/share")


def test_mount_for_follows_a_symlink_into_the_share(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (tmp_path / "link").symlink_to(share)
    mounts = [Mount("/", "ext4", "/dev/sda1"), Mount(str(share), "nfs4", "nas:/x")]
    assert mount_for(tmp_path / "link" / "alice" / "inbox", mounts) == mounts[1]


def test_no_mount_table_means_unknown_and_auto_polls() -> None:
    assert mount_for(Path("/x"), []) is None
    method, reason = choose_observer("auto", Path("/x"), [])
    assert method == "polling" and "unknown" in reason


def test_an_explicit_choice_is_kept_and_warns_on_a_share() -> None:
    mounts = parse_mounts(SAMPLE)
    assert choose_observer("polling", Path("/data/inbox"), mounts)[0] == "polling"
    method, reason = choose_observer("inotify", Path("/srv/tiktok/bob/inbox"), mounts)
    assert method == "inotify" and "cifs" in reason and "rescan" in reason
    with pytest.raises(ValueError, match="watch.observer"):
        choose_observer("fanotify", Path("/data"), mounts)


@pytest.mark.parametrize("fs_type", ["nfs", "NFS4", "cifs", "smb3", "smbfs", "9p", "fuse.rclone", "fuse.sshfs",
                                     "sshfs", "ceph", "glusterfs", "fuse.glusterfs", "davfs", "fuse.davfs2", "afs",
                                     "fuse.something-new", "fuse"])
def test_network_types(fs_type: str) -> None:
    assert is_network(fs_type)


@pytest.mark.parametrize("fs_type", ["ext4", "btrfs", "zfs", "xfs", "tmpfs", "overlay", "fuseblk", "f2fs"])
def test_local_types(fs_type: str) -> None:
    assert not is_network(fs_type)


def test_read_mounts_prefers_proc_self_and_falls_back(fs) -> None:  # type: ignore[no-untyped-def]
    fs.create_file("/proc/mounts", contents="/dev/b /fallback ext4 rw 0 0\n")
    assert fsinfo.read_mounts() == [Mount("/fallback", "ext4", "/dev/b")]
    fs.create_file("/proc/self/mounts", contents="//nas/x /srv cifs rw 0 0\n")
    assert fsinfo.read_mounts() == [Mount("/srv", "cifs", "//nas/x")]


def test_read_mounts_without_proc_is_empty(fs) -> None:  # type: ignore[no-untyped-def]
    assert fsinfo.read_mounts() == []


def test_inotify_limits_reads_the_three_values(tmp_path: Path) -> None:
    (tmp_path / "max_user_watches").write_text("8192\n")
    (tmp_path / "max_user_instances").write_text("128\n")
    assert fsinfo.inotify_limits(tmp_path) == {"max_user_watches": 8192, "max_user_instances": 128,
                                               "max_queued_events": None}


def test_inotify_limits_on_this_machine_are_numbers() -> None:
    limits = fsinfo.inotify_limits()
    if not Path("/proc/sys/fs/inotify").is_dir():
        pytest.skip("no inotify on this system")
    assert all(isinstance(value, int) and value > 0 for value in limits.values())


@pytest.mark.parametrize(("number", "sysctl"), [(errno.ENOSPC, "fs.inotify.max_user_watches (now 8192)"),
                                                (errno.EMFILE, "fs.inotify.max_user_instances (now 128)")])
def test_limit_advice_names_the_sysctl_its_value_and_says_host(number: int, sysctl: str) -> None:
    advice = fsinfo.inotify_limit_advice(number, {"max_user_watches": 8192, "max_user_instances": 128})
    assert sysctl in advice and "`sysctl " in advice and "on the host" in advice
