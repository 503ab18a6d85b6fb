"""Photo posts end to end: a folder (or one image) in the inbox becomes one photo post that the emulator
really downloads from the daemon's media host, in name order, with the exact bytes."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixture import running_emulator
from tests.harness import Rig, wait_for
from watchfolder.emulator.clock import OffsetClock
from watchfolder.media import convert, samples

INIT_ENDPOINTS = {"inbox_init", "video_init", "content_init"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HostedRig(Rig):
    """A Rig whose daemon's media host serves ``prefix`` (``http://127.0.0.1:port/media/``)."""

    prefix = ""
    port = 0


@contextlib.contextmanager
def hosted_rig(base: Path, *, accounts: Mapping[str, Mapping[str, Any]] | None = None,
               overrides: Mapping[str, Any] | None = None, sign_in: bool = True,
               **emulator_config: Any) -> Iterator[HostedRig]:
    """A daemon rig whose media host serves on a free 127.0.0.1 port, and an emulator that trusts that
    URL prefix and really downloads from it; both share the emulator's clock. Stopped afterwards."""
    port = free_port()
    prefix = f"http://127.0.0.1:{port}/media/"
    media = {"media_host.url_prefix": prefix, "media_host.serve": f"127.0.0.1:{port}"}
    with running_emulator(clock=OffsetClock(), processing_seconds=0, require_https_urls=False,
                          verified_url_prefixes=[prefix], **emulator_config) as emulator:
        rig = HostedRig(base, emulator, accounts=accounts, overrides={**media, **(overrides or {})},
                        sign_in=sign_in)
        rig.prefix, rig.port = prefix, port
        try:
            yield rig
        finally:
            rig.stop()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inits(rig: Rig) -> list[Any]:
    return [r for r in rig.emulator.records.requests if r.endpoint in INIT_ENDPOINTS]


def staged_files(rig: Rig) -> list[str]:
    """Files the media host still holds (its index file, and that file's temp copy while it is rewritten, aside)."""
    return sorted(name for name in os.listdir(rig.state_dir / "staging")
                  if name != "index.json" and not name.startswith(".watchfolder-index"))


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[HostedRig]:
    with hosted_rig(tmp_path) as made:
        made.start()
        yield made


def test_a_folder_of_three_photos_is_one_post_fetched_in_name_order(rig: HostedRig, tmp_path: Path) -> None:
    """Three images in a folder with post.yaml: one photo post of them in natural name order (IMG1,
    img2, img10), the emulator fetched each from the media host with the exact bytes, the title and
    cover are as set, and the folder (with post.yaml) and its sidecar end in done/."""
    trip = tmp_path / "trip"
    trip.mkdir()
    samples.write_jpeg(trip / "img10.jpg", seed=1)
    samples.write_jpeg(trip / "img2.jpg", 1080, 1080, seed=2)
    samples.write_webp(trip / "IMG1.webp", seed=3)
    (trip / "post.yaml").write_text('title: "Trip 🏔"\ndescription: "three days"\nphoto_cover_index: 2\n',
                                    encoding="utf-8")
    in_order = [sha256(trip / name) for name in ("IMG1.webp", "img2.jpg", "img10.jpg")]
    rig.drop("alice", "trip", trip)

    sidecar = rig.wait_sidecar("alice", "trip")

    assert [r.endpoint for r in inits(rig)] == ["content_init"]
    (publish,) = rig.emulator.records.publishes
    assert (publish.kind, publish.mode, publish.source) == ("photo", "inbox", "PULL_FROM_URL")
    assert list(publish.photo_sha256s) == in_order
    assert list(publish.fetched_urls) == list(publish.photo_urls)   # fetched one after another, in post order
    assert all(url.startswith(rig.prefix) for url in publish.photo_urls)
    assert publish.post_info == {"title": "Trip 🏔", "description": "three days"}
    assert publish.photo_cover_index == 2
    assert sidecar["result"] == "done" and sidecar["kind"] == "photo"
    assert sidecar["status"] == "SEND_TO_USER_INBOX"
    assert sidecar["post_settings"]["title"] == "Trip 🏔"
    done = rig.folder("alice", "done")
    assert sorted(os.listdir(done / "trip")) == ["IMG1.webp", "img10.jpg", "img2.jpg", "post.yaml"]
    assert os.listdir(rig.folder("alice", "inbox")) == []
    wait_for(lambda: staged_files(rig) == [], 5, what="staged photos released at the final status")


def test_a_single_photo_with_a_caption_file_is_a_one_photo_post(rig: HostedRig, tmp_path: Path) -> None:
    """One image (plus sunset.txt) is a photo post of that one image; both files go to done/."""
    samples.write_webp(tmp_path / "sunset.webp", 1920, 1080, seed=7)
    digest = sha256(tmp_path / "sunset.webp")
    rig.drop("alice", "sunset.webp", tmp_path / "sunset.webp")
    (rig.folder("alice", "inbox") / "sunset.txt").write_text("Sunset over the bay\n", encoding="utf-8")

    sidecar = rig.wait_sidecar("alice", "sunset.webp")

    (publish,) = rig.emulator.records.publishes
    assert publish.kind == "photo" and list(publish.photo_sha256s) == [digest]
    assert publish.post_info["title"] == "Sunset over the bay"
    assert sidecar["settings_file"] == "sunset.txt"
    assert sorted(os.listdir(rig.folder("alice", "done"))) == ["sunset.txt", "sunset.webp", "sunset.webp.json"]


def _thirty_six(folder: Path) -> None:
    for index in range(36):
        samples.write_jpeg(folder / f"p{index}.jpg", 64, 64, seed=index)


def _png_among_jpegs(folder: Path) -> None:
    samples.write_jpeg(folder / "a.jpg", seed=1)
    samples.write_png(folder / "b.png", 40, 30)
    samples.write_jpeg(folder / "c.jpg", seed=2)


def _beyond_1080p(folder: Path) -> None:
    samples.write_jpeg(folder / "a.jpg", seed=1)
    samples.write_jpeg(folder / "huge.jpg", 2400, 1600, seed=2)


def _over_20_mb(folder: Path) -> None:
    samples.write_jpeg(folder / "a.jpg", seed=1)
    samples.write_jpeg(folder / "heavy.jpg", seed=2)
    with open(folder / "heavy.jpg", "r+b") as handle:
        handle.truncate(20_000_001)   # sparse: costs no disk, still 20,000,001 bytes


def _heic_among_jpegs(folder: Path) -> None:
    samples.write_jpeg(folder / "IMG_0001.JPG", seed=1)
    (folder / "IMG_0002.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
    (folder / "notes.txt").write_text("left out, not refused\n")


def _disguised_text(folder: Path) -> None:
    samples.write_jpeg(folder / "a.jpg", seed=1)
    (folder / "notes.jpg").write_text("not a picture at all\n")


REFUSED_SETS = {   # folder name: (how to fill it, the sidecar's error code, words its message must hold)
    "thirty-six": (_thirty_six, "too_many_photos", ["36 images", "at most 35"]),
    "with-png": (_png_among_jpegs, "unsupported_media", ["b.png", "PNG"]),
    "beyond-1080p": (_beyond_1080p, "image_too_large_resolution", ["huge.jpg", "2400x1600", "1080p"]),
    "over-20-mb": (_over_20_mb, "too_large", ["heavy.jpg", "20,000,001 bytes", "20 MB"]),
    "text-named-jpg": (_disguised_text, "unsupported_media", ["notes.jpg", "a text file"]),
    "with-heic": (_heic_among_jpegs, "unsupported_media", ["IMG_0002.HEIC", "JPEG and WebP images only"]),
}


def test_a_photo_set_tiktok_would_refuse_fails_naming_the_image_and_no_init_is_sent(rig: HostedRig,
                                                                                    tmp_path: Path) -> None:
    """Pre-flight per image (36 images, a PNG without conversion, beyond 1080p, over 20 MB, text named
    .jpg, a HEIC beside JPEGs): each post goes to failed/ with a sidecar naming the image and the reason,
    before any API call."""
    for name, (fill, _, _) in REFUSED_SETS.items():
        folder = tmp_path / name
        folder.mkdir()
        fill(folder)
        rig.drop("alice", name, folder)

    for name, (_, code, words) in REFUSED_SETS.items():
        sidecar = rig.wait_sidecar("alice", name, "failed")
        assert sidecar["error"]["code"] == code, name
        for word in words:
            assert word in sidecar["error"]["message"], name
        assert (rig.folder("alice", "failed") / name).is_dir(), name
    assert rig.emulator.records.requests == []


def test_a_cover_index_past_the_last_image_fails_before_any_call(rig: HostedRig, tmp_path: Path) -> None:
    """photo_cover_index must name one of the post's images; TikTok would refuse it, so we do first."""
    folder = tmp_path / "pair"
    folder.mkdir()
    samples.write_jpeg(folder / "1.jpg", seed=1)
    samples.write_jpeg(folder / "2.jpg", seed=2)
    (folder / "post.yaml").write_text("photo_cover_index: 2\n")
    rig.drop("alice", "pair", folder)

    sidecar = rig.wait_sidecar("alice", "pair", "failed")

    assert sidecar["error"]["code"] == "bad_post_settings"
    assert "photo_cover_index" in sidecar["error"]["message"] and "has 2" in sidecar["error"]["message"]
    assert inits(rig) == []


def test_a_photo_folder_still_being_filled_is_taken_only_once_quiet(rig: HostedRig, tmp_path: Path) -> None:
    """Images copied into an inbox folder one by one, each sooner than settle_seconds after the last,
    all make it into the one post."""
    import time

    folder = rig.folder("alice", "inbox") / "slow"
    folder.mkdir()
    for index in range(4):
        samples.write_jpeg(folder / f"{index}.jpg", 64, 64, seed=index)
        time.sleep(0.15)   # settle_seconds is 0.3 in the rig

    rig.wait_sidecar("alice", "slow")

    (publish,) = rig.emulator.records.publishes
    assert len(publish.photo_urls) == 4
    assert len(inits(rig)) == 1


# ---- the media host, through the running daemon ------------------------------------------------


def _get(port: int, target: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``target`` verbatim (no client-side path clean-up, unlike most HTTP libraries)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", target, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_the_media_host_serves_staged_names_only_and_byte_ranges(rig: HostedRig, tmp_path: Path) -> None:
    """Unknown names and traversal attempts are 404 (never a listing, never a redirect); a staged file
    is served whole and by byte range with the right Content-Length and Content-Range."""
    assert rig.daemon is not None and rig.daemon.mediahost is not None
    source = tmp_path / "blob.jpg"
    data = os.urandom(100_000)
    source.write_bytes(data)
    staged = rig.daemon.mediahost.stage(source, now=rig.emulator.clock.now())
    port = rig.port
    path = f"/media/{staged.name}"

    status, headers, body = _get(port, path)
    assert (status, body, headers["content-length"]) == (200, data, str(len(data)))
    status, headers, body = _get(port, path, {"Range": "bytes=1000-1999"})
    assert (status, body) == (206, data[1000:2000])
    assert headers["content-range"] == f"bytes 1000-1999/{len(data)}" and headers["content-length"] == "1000"
    status, headers, body = _get(port, path, {"Range": "bytes=-10"})
    assert (status, body) == (206, data[-10:])
    status, headers, _ = _get(port, path, {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"

    secret_name = "A" * 32 + ".jpg"   # shaped like a staged name, but never staged
    for target in (f"/media/{secret_name}", "/media/", "/media", "/media/../config.yaml",
                   "/media/..%2fconfig.yaml", "/media/%2e%2e/config.yaml", "/media/../state/staging/index.json",
                   "/media/index.json", "//etc/passwd", f"/media/{staged.name}/..", f"/other/{staged.name}"):
        status, headers, body = _get(port, target)
        assert status == 404, target
        assert "location" not in headers and staged.name.encode() not in body


def test_a_staged_file_tiktok_never_fetched_is_swept_after_the_pull_window(rig: HostedRig, tmp_path: Path) -> None:
    """Staged media the daemon never released (a task that vanished) goes once TikTok's one-hour pull
    window and the margin have passed on the daemon's clock."""
    assert rig.daemon is not None and rig.daemon.mediahost is not None
    samples.write_jpeg(tmp_path / "left.jpg", seed=5)
    staged = rig.daemon.mediahost.stage(tmp_path / "left.jpg", now=rig.emulator.clock.now())
    assert staged_files(rig) == [staged.name]

    rig.emulator.clock.advance(rig.daemon.mediahost.pull_window_seconds + 1)

    wait_for(lambda: staged_files(rig) == [], 10, what="the sweep of an expired staged file")
    assert rig.daemon.mediahost.pull_window_seconds > 3600   # TikTok's hour, plus a margin


# ---- optional conversion -----------------------------------------------------------------------


def test_target_size_fits_tiktoks_1080p_limit_keeping_the_aspect_ratio() -> None:
    """Downscaling keeps the aspect ratio and lands inside 1080 (short side) by 1920 (long side)."""
    assert convert.target_size(1080, 1350) == (1080, 1350)
    assert convert.target_size(4000, 3000) == (1440, 1080)
    assert convert.target_size(3000, 4000) == (1080, 1440)
    assert convert.target_size(8000, 1000) == (1920, 240)
    width, height = convert.target_size(4032, 3025)
    assert width <= 1920 and height <= 1080


def test_conversion_asked_for_without_pillow_fails_saying_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    """photos.convert: true without the photos extra: a PNG fails before any call, naming the fix."""
    # The tests install Pillow; the seam stands for a machine that has only the base install.
    monkeypatch.setattr(convert, "available", lambda: False)
    with hosted_rig(tmp_path, overrides={"photos.convert": True}) as rig:
        rig.start()
        samples.write_png(tmp_path / "chart.png", 50, 40)
        rig.drop("alice", "chart.png", tmp_path / "chart.png")
        sidecar = rig.wait_sidecar("alice", "chart.png", "failed")
        assert sidecar["error"]["code"] == "conversion_unavailable"
        assert "chart.png" in sidecar["error"]["message"] and "watchfolder[photos]" in sidecar["error"]["message"]
        assert inits(rig) == []


def test_with_conversion_a_png_and_an_oversized_jpeg_go_as_jpegs_within_1080p(tmp_path: Path) -> None:
    """photos.convert: true: the PNG and the 2400x1600 JPEG reach TikTok as JPEGs within 1080p; the
    user's own files are left untouched in done/."""
    from PIL import Image

    with hosted_rig(tmp_path, overrides={"photos.convert": True}) as rig:
        rig.start()
        folder = tmp_path / "mixed"
        folder.mkdir()
        samples.write_png(folder / "a.png", 300, 200)
        samples.write_jpeg(folder / "b.jpg", 2400, 1600, seed=3)
        originals = {name: sha256(folder / name) for name in ("a.png", "b.jpg")}
        rig.drop("alice", "mixed", folder)
        rig.wait_sidecar("alice", "mixed")
        (publish,) = rig.emulator.records.publishes
        assert publish.status == "SEND_TO_USER_INBOX"   # the emulator accepts only JPEG and WebP
        assert all(url.endswith(".jpg") for url in publish.photo_urls)
        done = rig.folder("alice", "done") / "mixed"
        assert {name: sha256(done / name) for name in originals} == originals
        with Image.open(done / "b.jpg") as original:
            assert original.size == (2400, 1600)
    converted = convert.to_jpeg(done / "b.jpg", tmp_path)
    with Image.open(converted) as image:
        assert image.format == "JPEG" and image.size == (1620, 1080)
