"""Sample media: exact sizes, deterministic bytes, different seeds, and files real decoders accept."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from watchfolder.media import samples

MIB = 1024 * 1024


@pytest.mark.parametrize("size", [5000, 5 * MIB + 1, 3 * MIB])
def test_write_mp4_makes_a_file_of_exactly_the_requested_size(tmp_path: Path, size: int) -> None:
    """Benchmarks and chunk tests need files of exact sizes."""
    path = samples.write_mp4(tmp_path / "clip.mp4", size=size)

    assert path.stat().st_size == size


def test_write_mp4_pads_with_blocks_that_differ(tmp_path: Path) -> None:
    """The padding is not one block repeated: each MiB carries its own counter."""
    data = samples.write_mp4(tmp_path / "clip.mp4", size=3 * MIB).read_bytes()

    tail = data[-2 * MIB:]
    assert tail[:MIB] != tail[MIB:]
    assert len(set(data[-MIB:])) > 200  # pseudo-random, not zeros


def test_write_mp4_is_deterministic_and_seeds_change_the_bytes(tmp_path: Path) -> None:
    """Same arguments give the same bytes; another seed gives other bytes (dedupe tests rely on both)."""
    a = samples.write_mp4(tmp_path / "a.mp4", seed=1).read_bytes()
    b = samples.write_mp4(tmp_path / "b.mp4", seed=1).read_bytes()
    c = samples.write_mp4(tmp_path / "c.mp4", seed=2).read_bytes()

    assert a == b
    assert a != c


def test_write_mp4_with_qt_brand_makes_a_mov(tmp_path: Path) -> None:
    """brand="qt  " puts QuickTime's brand in the ftyp box."""
    data = samples.write_mp4(tmp_path / "clip.mov", brand="qt  ").read_bytes()

    assert data[4:12] == b"ftypqt  "


def test_write_mp4_refuses_a_size_too_small_for_its_boxes(tmp_path: Path) -> None:
    """A size that cannot hold ftyp, moov and an mdat header is a programming error, said plainly."""
    with pytest.raises(ValueError, match="below the smallest"):
        samples.write_mp4(tmp_path / "clip.mp4", size=100)
    assert list(tmp_path.iterdir()) == []


def test_writers_leave_no_temporary_file_behind(tmp_path: Path) -> None:
    """Samples appear whole under their name; the hidden temp name is gone afterwards."""
    samples.write_mp4(tmp_path / "a.mp4")
    samples.write_webm(tmp_path / "b.webm")
    samples.write_jpeg(tmp_path / "c.jpg", 16, 16)
    samples.write_webp(tmp_path / "d.webp", 16, 16)
    samples.write_png(tmp_path / "e.png", 16, 16)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.webm", "c.jpg", "d.webp", "e.png"]


def test_write_sparse_mp4_has_the_size_without_using_the_disk(tmp_path: Path) -> None:
    """A 2 GB benchmark file costs almost no disk: the mdat is a hole."""
    path = samples.write_sparse_mp4(tmp_path / "big.mp4", 2 * 1000**3)

    assert path.stat().st_size == 2 * 1000**3
    assert path.stat().st_blocks * 512 < 10 * MIB


def test_write_webm_makes_a_file_of_exactly_the_requested_size(tmp_path: Path) -> None:
    """WebM samples can be sized exactly too."""
    path = samples.write_webm(tmp_path / "clip.webm", size=123_457)

    assert path.stat().st_size == 123_457
    assert path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"


@pytest.mark.parametrize("writer", [samples.write_jpeg, samples.write_webp])
def test_image_seeds_give_different_bytes_and_equal_seeds_equal_bytes(tmp_path: Path, writer) -> None:
    """Dedupe by content is tested elsewhere with these: seeds must separate images."""
    made = [writer(tmp_path / f"{i}", 64, 48, seed=seed).read_bytes() for i, seed in enumerate([0, 1, 2, 0])]

    assert len({made[0], made[1], made[2]}) == 3
    assert made[0] == made[3]


def test_write_png_is_a_well_formed_png(tmp_path: Path) -> None:
    """Every chunk's CRC holds and the pixel data inflates to height rows of 1 + 3 * width bytes."""
    data = samples.write_png(tmp_path / "p.png", 7, 5).read_bytes()

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack_from(">I", data, pos + 8 + length)[0] == zlib.crc32(kind + payload)
        chunks[kind] = payload
        pos += 12 + length
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (7, 5)
    assert len(zlib.decompress(chunks[b"IDAT"])) == 5 * (1 + 3 * 7)
    assert b"IEND" in chunks


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed; this check only runs where it is")
    return found


def _ppm_pixels(data: bytes) -> tuple[tuple[int, int], set[bytes]]:
    fields = data.split(maxsplit=4)
    width, height = int(fields[1]), int(fields[2])
    pixels = fields[4][-width * height * 3:]
    return (width, height), {pixels[i:i + 3] for i in range(0, len(pixels), 3)}


def test_jpeg_sample_decodes_with_libjpeg_to_one_colour(tmp_path: Path) -> None:
    """write_jpeg's output is a real JPEG: libjpeg's djpeg decodes it at the size asked for."""
    djpeg = _tool("djpeg")
    path = samples.write_jpeg(tmp_path / "a.jpg", 100, 60, seed=3)

    done = subprocess.run([djpeg, "-pnm", str(path)], capture_output=True, check=True)

    size, colours = _ppm_pixels(done.stdout)
    assert size == (100, 60)
    assert len(colours) == 1
    assert done.stderr == b""


def test_webp_sample_decodes_with_libwebp_to_the_seed_colour(tmp_path: Path) -> None:
    """write_webp's output is a real lossless WebP: libwebp's dwebp decodes it exactly."""
    dwebp = _tool("dwebp")
    path = samples.write_webp(tmp_path / "a.webp", 100, 60, seed=3)
    out = tmp_path / "a.ppm"

    subprocess.run([dwebp, str(path), "-ppm", "-o", str(out)], capture_output=True, check=True)

    size, colours = _ppm_pixels(out.read_bytes())
    assert size == (100, 60)
    assert colours == {bytes(samples._colour(3))}


@pytest.mark.parametrize(("name", "writer"), [("a.mp4", samples.write_mp4), ("a.webm", samples.write_webm)])
def test_video_samples_are_read_by_ffprobe(tmp_path: Path, name: str, writer) -> None:
    """ffprobe (FFmpeg) parses the video samples and finds the duration and dimensions written."""
    ffprobe = _tool("ffprobe")
    path = writer(tmp_path / name, duration_seconds=3.5, width=720, height=1280)

    done = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration:stream=width,height", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True, check=True)

    assert done.stdout.split() == ["720,1280", "3.500000"]
