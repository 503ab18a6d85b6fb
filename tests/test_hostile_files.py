"""Someone with write access to an inbox attacks the daemon: a file swapped for a symlink to the token file
after it was taken in, a file rewritten in place with its mtime put back. Against the real daemon and the
emulator: not one byte of a link's target reaches TikTok, and the sha256 in the sidecar is what was sent."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Rig, wait_for
from tests.test_notify import Receiver, notify_rig, start
from tests.test_photos import hosted_rig, inits, staged_files
from watchfolder import logs
from watchfolder.core.model import State
from watchfolder.daemon import finish, outbox
from watchfolder.daemon import publisher as publish
from watchfolder.media import samples
from watchfolder.ops import notify, report
from watchfolder.store.store import Store


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _schedule(rig: Rig, tmp_path: Path, name: str, make: Callable[[Path], Any]) -> Path:
    """Drop ``name`` with a settings file holding it for an hour; return its path once it is scheduled."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rig.emulator.clock.now() + 3600))
    make(tmp_path / name)
    if (tmp_path / name).is_dir():
        (tmp_path / name / "post.yaml").write_text(f'publish_at: "{stamp}"\n', encoding="utf-8")
    else:
        stem = os.path.splitext(name)[0]
        (tmp_path / f"{stem}.yaml").write_text(f'publish_at: "{stamp}"\n', encoding="utf-8")
        rig.drop("alice", f"{stem}.yaml", tmp_path / f"{stem}.yaml")
    path = rig.drop("alice", name, tmp_path / name)

    def scheduled() -> bool:
        rows = report.collect(rig.settings, rig.emulator.clock.now())["items"]
        return any(row["name"] == name and row["wait_reason"] == "publish_at" for row in rows)

    wait_for(scheduled, 15, what=f"{name} scheduled")
    return path


def _items(rig: Rig) -> list[Any]:
    store = Store(rig.state_dir, readonly=True)
    try:
        return store.items(account="alice")
    finally:
        store.close()


def _swap_for_link(path: Path, target: Path) -> None:
    """What an attacker does: a link to a secret takes the taken-in file's name, in one rename (an unlink
    then a symlink lets the daemon see the name missing in between: "taken out", not "a link")."""
    spare = path.with_name(path.name + ".link")
    os.symlink(target, spare)
    os.replace(spare, path)


def _token_file(rig: Rig) -> Path:
    return rig.state_dir / "tokens" / "alice.json"


def test_a_waiting_video_swapped_for_a_link_to_the_token_file_sends_nothing(make_rig, tmp_path: Path) -> None:
    """Taken in, hashed, waiting for publish_at; then replaced by a symlink to the account's token file.
    When its time comes the item is cancelled: no init, no chunk, nothing of the tokens at TikTok, and
    the link is left where it is."""
    rig = make_rig()
    rig.start()
    path = _schedule(rig, tmp_path, "clip.mp4", lambda p: samples.write_mp4(p, size=120_000))
    secret = _token_file(rig).read_bytes()
    _swap_for_link(path, _token_file(rig))

    rig.emulator.clock.advance(3601)

    wait_for(lambda: _items(rig)[0].state == "cancelled", 15, what="the item cancelled")
    (item,) = _items(rig)
    assert inits(rig) == [] and rig.emulator.records.publishes == []
    assert [r for r in rig.emulator.records.requests if r.endpoint == "upload"] == []
    history = Store(rig.state_dir, readonly=True).history(item.id)
    assert "replaced by a symlink" in (history[-1]["detail"] or ""), history
    assert path.is_symlink() and _token_file(rig).read_bytes() == secret
    assert secret.decode() not in (rig.folder("alice", "inbox") / "clip.yaml").read_text()


def test_a_link_swapped_in_during_the_upload_gets_nothing_of_its_target_sent(make_rig, tmp_path: Path,
                                                                              monkeypatch) -> None:
    """The swap lands just before the first chunk goes: the chunk comes from the descriptor opened when
    the file was checked, so TikTok receives exactly the dropped video's bytes, none of the token file."""
    rig = make_rig()
    original = publish.Publisher.put_chunk
    swapped: list[Path] = []

    def swap_then_send(self: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
        if not swapped:
            path = rig.folder("alice", "processing") / item.name
            _swap_for_link(path, _token_file(rig))
            swapped.append(path)
        return original(self, item, *args, **kwargs)

    monkeypatch.setattr(publish.Publisher, "put_chunk", swap_then_send)
    rig.start()
    video = samples.write_mp4(tmp_path / "clip.mp4", size=150_000)
    digest = _digest(video.read_bytes())
    rig.drop("alice", "clip.mp4", video)

    wait_for(lambda: swapped and _items(rig)[0].state in ("done", "failed"), 20, what="the item finished")

    secret = _digest(_token_file(rig).read_bytes())
    assert [p.sha256 for p in rig.emulator.records.publishes] == [digest]
    assert secret != digest
    assert all(p.received_bytes == 150_000 for p in rig.emulator.records.publishes)


def test_a_waiting_photo_swapped_for_a_link_is_never_staged(tmp_path: Path) -> None:
    """A photo waits for publish_at, then becomes a link to the token file: nothing is staged on the
    media host (whose files TikTok pulls), nothing is sent, the item is cancelled."""
    with hosted_rig(tmp_path) as rig:
        rig.start()
        path = _schedule(rig, tmp_path, "pic.jpg", lambda p: samples.write_jpeg(p, seed=3))
        _swap_for_link(path, _token_file(rig))

        rig.emulator.clock.advance(3601)

        wait_for(lambda: _items(rig)[0].state == "cancelled", 15, what="the photo cancelled")
        assert inits(rig) == [] and staged_files(rig) == []


def test_an_image_of_a_photo_folder_swapped_for_a_link_is_left_out_and_never_read(tmp_path: Path) -> None:
    """In a scheduled photo folder one image becomes a link to the token file: the folder is taken again
    as new content and posted with the images that are files; the link's target is never staged."""
    with hosted_rig(tmp_path) as rig:
        rig.start()

        def folder(path: Path) -> None:
            path.mkdir()
            for number in (1, 2):
                samples.write_jpeg(path / f"{number}.jpg", seed=number)

        path = _schedule(rig, tmp_path, "trip", folder)
        _swap_for_link(path / "2.jpg", _token_file(rig))

        rig.emulator.clock.advance(3601)

        secret = _digest(_token_file(rig).read_bytes())
        wait_for(lambda: rig.emulator.records.publishes or _items(rig)[0].state == "cancelled", 20,
                 what="the folder sent or cancelled")
        for record in rig.emulator.records.publishes:
            assert secret not in record.photo_sha256s
            assert len(record.photo_urls) == 1


def test_a_file_rewritten_in_place_with_its_mtime_put_back_is_hashed_again(make_rig, tmp_path: Path) -> None:
    """Keyed, its first init refused by a TikTok hiccup, so it waits for a retry; meanwhile rewritten in
    place (same size, same inode) with its mtime put back, as some sync tools do. The change time gives
    it away: the sidecar's sha256 is the hash of the bytes TikTok received, not of the earlier content."""
    rig = make_rig(overrides={"upload.retry_initial": 600, "upload.retry_max": 600})
    rig.emulator.faults.fail_next("inbox_init", kind="5xx")
    rig.start()
    video = samples.write_mp4(tmp_path / "clip.mp4", size=120_000)
    first = _digest(video.read_bytes())
    path = rig.drop("alice", "clip.mp4", video)
    wait_for(lambda: inits(rig) and _items(rig)[0].state == "waiting", 15, what="the init refused once")
    assert _items(rig)[0].quick_key is not None   # its dedupe key; the sha256 comes from the bytes sent
    before = os.stat(path)
    assert (_items(rig)[0].dev, _items(rig)[0].ino) == (before.st_dev, before.st_ino)  # the identity recorded
    data = bytearray(path.read_bytes())
    data[-16:] = bytes(range(16))  # inside the mdat payload: still a valid video
    time.sleep(0.02)  # a later change time than the first write's, on any clock granularity
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(path).st_mtime_ns, os.stat(path).st_ino, os.stat(path).st_size) == (
        before.st_mtime_ns, before.st_ino, before.st_size)

    rig.emulator.clock.advance(700)

    sidecar = rig.wait_sidecar("alice", "clip.mp4")
    assert sidecar["sha256"] == _digest(bytes(data)) != first
    assert [p.sha256 for p in rig.emulator.records.publishes] == [sidecar["sha256"]]


# ---- settings files built to explode (point 2) -----------------------------------------------------

BOMB = "\n".join(["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                 + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
                 + ["title: *a9", ""])


def test_an_alias_bomb_settings_file_is_refused_small_and_fast(make_rig, tmp_path: Path) -> None:
    """A few hundred bytes of nested YAML aliases ("billion laughs") beside a video: the video goes to
    failed/ as bad_post_settings naming the aliases, with a sidecar under 64 KiB, no log line over 24 KiB,
    and the daemon's memory barely moves; a settings file over 64 KiB and a 60,000-character value are
    refused with messages that quote a bounded piece only. Nothing is sent to TikTok."""
    buffer = io.StringIO()
    logs.configure("info", json=True, stream=buffer)
    rig = make_rig()
    rig.start()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(BOMB) < 1000
    cases = {"bomb": BOMB, "huge": "title: " + "x" * 100_000 + "\n",
             "long-value": "privacy_level: " + "EVERYONE" * 7_500 + "\n"}
    for number, (case, content) in enumerate(cases.items()):
        (tmp_path / f"{case}.yaml").write_text(content, encoding="utf-8")
        rig.drop("alice", f"{case}.yaml", tmp_path / f"{case}.yaml")
        rig.drop("alice", f"{case}.mp4", samples.write_mp4(tmp_path / f"{case}.mp4", size=90_000 + number))

    sidecars = {case: rig.wait_sidecar("alice", f"{case}.mp4", "failed") for case in cases}

    assert "aliases (*name) are not allowed" in sidecars["bomb"]["error"]["message"] or \
        "anchors (&name) are not allowed" in sidecars["bomb"]["error"]["message"]
    assert "over 64 KiB" in sidecars["huge"]["error"]["message"]
    assert "EVERYONEEVERYONE" in sidecars["long-value"]["error"]["message"]
    for case, sidecar in sidecars.items():
        assert sidecar["error"]["code"] == "bad_post_settings", case
        assert len(sidecar["error"]["message"]) < 1000, case
        assert (rig.folder("alice", "failed") / f"{case}.mp4.json").stat().st_size < 64 * 1024, case
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB: under 100 MB more
    rig.stop()
    assert max(len(line) for line in buffer.getvalue().splitlines()) < 24 * 1024
    assert rig.emulator.records.requests == []


def test_a_sidecar_stays_under_64_kib_whatever_its_record_holds(tmp_path: Path) -> None:
    """The sidecar of a record with a megabyte error message and a thousand retries is cut to size: the
    message bounded, the history kept at its first and last events with a count of those left out."""
    store = Store(tmp_path)
    item = store.add_item(account="alice", name="clip.mp4", kind="video", now=0.0, state=State.FAILED,
                          error_code="bug", error_message="x" * 1_000_000)
    for number in range(1000):
        store.note(item.id, "waiting", now=float(number), detail="d" * 5000)

    data = finish.sidecar(store.get(item.id), store.history(item.id), 10.0)
    store.close()

    text = json.dumps(data, ensure_ascii=False, indent=2)
    assert len(text.encode()) < 64 * 1024
    assert data["error"]["message"].startswith("xxx") and "more characters" in data["error"]["message"]
    assert any(event.get("detail") == "952 events left out" for event in data["history"])


# ---- names that are not UTF-8 (point 5) ------------------------------------------------------------

@pytest.fixture
def receiver() -> Iterator[Receiver]:
    serving = Receiver()
    yield serving
    serving.close()


def test_names_that_are_not_utf8_are_posted_refused_and_announced(make_rig, receiver, tmp_path: Path) -> None:
    """Names in Latin-1 bytes, as SMB clients write them: a video with such a settings file is posted
    with its caption; one whose settings file is bad goes to failed/ and is announced; the sidecars are
    valid UTF-8 JSON showing the stray bytes as \\xNN; and the notification after that one (a plain
    name) is still delivered, so the sender thread lived through the odd one."""
    rig = notify_rig(make_rig, receiver)
    start(rig, receiver)
    inbox = rig.folder("alice", "inbox")
    good, bad = os.fsdecode(b"f\xeate"), os.fsdecode(b"caf\xe9 \xff")
    (tmp_path / "good.yaml").write_text("title: une f\u00eate\n", encoding="utf-8")
    rig.drop("alice", f"{good}.yaml", tmp_path / "good.yaml")
    rig.drop("alice", f"{good}.mp4", samples.write_mp4(tmp_path / "good.mp4", size=90_000))
    (tmp_path / "bad.yaml").write_text("titel: oops\n", encoding="utf-8")
    rig.drop("alice", f"{bad}.yaml", tmp_path / "bad.yaml")
    rig.drop("alice", f"{bad}.mp4", samples.write_mp4(tmp_path / "bad.mp4", size=91_000))

    posted = wait_for(lambda: _sidecar_bytes(rig, "done", f"{good}.mp4"), 30, what="the good one in done/")
    refused = wait_for(lambda: _sidecar_bytes(rig, "failed", f"{bad}.mp4"), 30, what="the bad one in failed/")
    wait_for(lambda: receiver.at("/topic"), 10, what="the first notification")
    (tmp_path / "notes.docx").write_bytes(b"not a video")
    rig.drop("alice", "notes.docx", tmp_path / "notes.docx")

    for sidecar in (posted, refused):
        json.loads(sidecar.decode("utf-8"))  # strict: valid UTF-8 and valid JSON
    done = json.loads(posted)
    assert done["name"] == "f\\xeate.mp4" and done["settings_file"] == "f\\xeate.yaml"
    assert done["post_settings"]["title"] == "une f\u00eate"
    failed = json.loads(refused)
    assert failed["error"]["code"] == "bad_post_settings" and "caf\\xe9 \\xff.yaml" in failed["error"]["message"]
    assert (rig.folder("alice", "failed") / f"{bad}.yaml").exists() and not (inbox / f"{good}.mp4").exists()
    wait_for(lambda: any(b"notes.docx" in topic.body for topic in receiver.at("/topic")), 15,
             what="the notification after the odd one")
    bodies = [topic.body.decode("utf-8") for topic in receiver.at("/topic")]  # strict UTF-8
    assert any("caf\\xe9 \\xff.mp4 (alice) went to failed/" in body for body in bodies)
    wait_for(lambda: len([h for h in receiver.at("/hook") if h.json()["event"] == "item_failed"]) == 2, 15,
             what="both failures at the webhook")
    failures = [hook.json()["item"] for hook in receiver.at("/hook") if hook.json()["event"] == "item_failed"]
    assert failures == ["caf\\xe9 \\xff.mp4", "notes.docx"]


def _sidecar_bytes(rig: Rig, folder: str, name: str) -> bytes | None:
    path = rig.folder("alice", folder) / f"{name}.json"
    return path.read_bytes() if path.exists() else None


def test_the_notification_thread_survives_an_exception_in_one_send(receiver) -> None:
    """Whatever breaks inside one send (here the receiver's URL makes requests raise a ValueError-like
    error), the sender logs it and delivers the next event."""
    sender = notify.Sender(webhook="http://[not-a-host/hook", ntfy=receiver.url + "/topic",
                           retry_delays=(0.01,), timeout=5)
    try:
        for number in (1, 2):
            sender.put(notify.Event("item_failed", "error", "alice", f"alice: {number} failed", f"n{number}", 0.0))
        wait_for(lambda: len(receiver.at("/topic")) == 2, 10, what="both ntfy posts")
        assert sender.thread.is_alive()
    finally:
        sender.close()


# ---- folders of one account on two filesystems (point 11) ------------------------------------------

def _other_filesystem(near: Path) -> Path:
    """A folder on another filesystem than ``near`` (tmpfs /dev/shm); the test cannot run without one."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(near).st_dev or not os.access(shm, os.W_OK):
        pytest.skip("needs a second writable filesystem (/dev/shm) to put an account folder on")
    return Path(tempfile.mkdtemp(prefix="watchfolder-xdev-", dir=shm))


def test_an_account_whose_folders_sit_on_two_filesystems_moves_by_copy(make_rig, tmp_path: Path) -> None:
    """processing/ and failed/ on another filesystem than inbox/ and done/ (a symlinked share): a video
    goes inbox → processing → done and a refused photo folder goes inbox → failed, each move across
    filesystems made as a copy then a removal. Every file arrives once, with its sidecar, nothing is
    left behind or looped over, and TikTok got one init."""
    other = _other_filesystem(tmp_path)
    try:
        rig = make_rig()
        base = rig.root / "alice"
        base.mkdir(parents=True, exist_ok=True)
        for folder in ("processing", "failed"):
            (other / folder).mkdir()
            (base / folder).symlink_to(other / folder)
        rig.start()
        video = samples.write_mp4(tmp_path / "clip.mp4", size=200_000)
        digest = _digest(video.read_bytes())
        rig.drop("alice", "clip.mp4", video)
        (tmp_path / "trip").mkdir()
        samples.write_jpeg(tmp_path / "trip" / "1.jpg", seed=1)
        (tmp_path / "trip" / "2.heic").write_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
        rig.drop("alice", "trip", tmp_path / "trip")

        sidecar = rig.wait_sidecar("alice", "clip.mp4")
        refused = rig.wait_sidecar("alice", "trip", "failed")

        assert sidecar["sha256"] == digest and [p.sha256 for p in rig.emulator.records.publishes] == [digest]
        assert len(inits(rig)) == 1
        assert _digest((rig.folder("alice", "done") / "clip.mp4").read_bytes()) == digest
        assert refused["error"]["code"] == "unsupported_media"
        assert sorted(os.listdir(other / "failed" / "trip")) == ["1.jpg", "2.heic"]
        assert os.listdir(rig.folder("alice", "inbox")) == []
        assert os.listdir(other / "processing") == []
        assert not [name for name in os.listdir(other / "failed") if name.startswith(".")]
        rows = report.collect(rig.settings, rig.emulator.clock.now())["items"]
        assert sorted(row["state"] for row in rows) == ["done", "failed"]
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_a_cross_device_move_cut_by_a_crash_is_finished_without_a_second_copy(tmp_path: Path) -> None:
    """The copy reached the target but the source was not yet removed: the copy is recognised (same
    size and mtime on another filesystem), so finishing removes the source instead of copying again."""
    other = _other_filesystem(tmp_path)
    try:
        source = samples.write_mp4(tmp_path / "clip.mp4", size=50_000)
        outbox.move_no_overwrite(source, other / "clip.mp4")
        assert not source.exists() and (other / "clip.mp4").stat().st_size == 50_000
        shutil.copy2(other / "clip.mp4", source)   # as if the crash came before the unlink
        assert outbox.same_copy(source, other / "clip.mp4")
        with pytest.raises(FileExistsError):
            outbox.move_no_overwrite(source, other / "clip.mp4")
        os.utime(source, ns=(0, 0))
        assert not outbox.same_copy(source, other / "clip.mp4")
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_status_shows_a_detail_quoting_stray_bytes_with_escapes(tmp_path: Path) -> None:
    """A record whose detail quotes a name's raw bytes (as an older version stored it) is shown by the
    status read model as valid UTF-8 with \\xNN escapes, never as the raw bytes."""
    store = Store(tmp_path)
    name = os.fsdecode(b"caf\xe9.mp4")
    item = store.add_item(account="alice", name=name, kind="video", now=1.0, state=State.WAITING,
                          detail=f"{name}: cannot read")
    row = report.item_row(store.get(item.id), 2.0)
    store.close()
    assert row["name"] == "caf\\xe9.mp4" and row["detail"] == "caf\\xe9.mp4: cannot read"
    json.dumps(row, ensure_ascii=False).encode("utf-8")


def test_a_log_line_has_a_ceiling_and_masks_a_secret_near_the_cut() -> None:
    """One event carrying a megabyte value (a hostile name or message) is written as one short line,
    saying how much was left out; a registered secret straddling the cut is still masked."""
    buffer = io.StringIO()
    logs.configure("info", json=True, stream=buffer)
    secret = "hostile-secret-token-value-0123456789"
    logs.register_secret(secret)
    value = "x" * (logs.VALUE_MAX - 20) + secret + "y" * 1_000_000  # the cut falls inside the secret
    logs.get_logger().warning("item_refused", reason=value)
    (line,) = buffer.getvalue().splitlines()
    assert len(line) < 2 * logs.VALUE_MAX
    assert "more characters" in json.loads(line)["reason"] and "hostile-secret-token" not in line
