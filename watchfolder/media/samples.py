"""Valid sample media made from nothing: for ``watchfolder demo``, tests and benchmarks.

Every writer builds its file in a hidden temporary name beside ``path`` and renames it into place,
so a watcher never sees half of a sample (hidden names are ignored by intake). Every writer returns
``path``. Byte content is deterministic for given arguments; different seeds give different bytes.
Over 300 lines because each format's writer is small but there are many formats.
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_BLOCK = 1024 * 1024
_IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


@contextmanager
def _atomic(path: Path) -> Iterator[BinaryIO]:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_fill(f: BinaryIO, count: int, seed: int) -> None:
    """Write ``count`` pseudo-random bytes at disk speed: one seeded 1 MiB block, stamped with a counter."""
    block = bytearray(random.Random(seed).randbytes(_BLOCK))
    index = 0
    while count > 0:
        block[0:8] = index.to_bytes(8, "big")  # each block differs, so no two MiB of a sample are equal
        n = min(count, _BLOCK)
        f.write(memoryview(block)[:n])
        count -= n
        index += 1


# --- MP4 / MOV -------------------------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


def _mp4_head(duration_seconds: float, width: int, height: int, brand: str, mvhd_version: int | None) -> bytes:
    major = brand.encode("ascii")
    if len(major) != 4:
        raise ValueError(f"an ftyp brand has 4 characters, got {brand!r}")
    compatible = [major] + ([b"isom", b"iso2", b"avc1", b"mp41"] if major != b"qt  " else [])
    ftyp = _box(b"ftyp", major + struct.pack(">I", 0x200) + b"".join(compatible))
    timescale = 1000
    duration = round(duration_seconds * timescale)
    version = mvhd_version if mvhd_version is not None else (1 if duration > 0xFFFFFFFF else 0)
    times = struct.pack(">QQIQ" if version else ">IIII", 0, 0, timescale, duration)
    tail = struct.pack(">IH10x", 0x10000, 0x100) + _IDENTITY_MATRIX + bytes(24) + struct.pack(">I", 2)
    mvhd = _full_box(b"mvhd", version, 0, times + tail)
    track_duration = min(duration, 0xFFFFFFFF)
    tkhd = _full_box(
        b"tkhd", 0, 3,
        struct.pack(">IIIII8xhhh2x", 0, 0, 1, 0, track_duration, 0, 0, 0)
        + _IDENTITY_MATRIX + struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, track_duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, b"\0\0\0\0vide" + bytes(12) + b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1) + _full_box(b"url ", 0, 1, b"")))
    avc1 = _box(
        b"avc1",
        bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HHII4xH", width, height, 0x480000, 0x480000, 1)
        + bytes(32) + struct.pack(">Hh", 0x18, -1),
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1) + avc1)
        + _full_box(b"stts", 0, 0, bytes(4)) + _full_box(b"stsc", 0, 0, bytes(4))
        + _full_box(b"stsz", 0, 0, bytes(8)) + _full_box(b"stco", 0, 0, bytes(4)),
    )
    mdia = _box(b"mdia", mdhd + hdlr + _box(b"minf", vmhd + dinf + stbl))
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd + mdia))
    return ftyp + moov


def _mdat_header(total: int, head_len: int, large: bool) -> bytes:
    """The mdat header that makes the file exactly ``total`` bytes long (64-bit largesize when needed)."""
    large = large or total - head_len > 0xFFFFFFFF
    header_len = 16 if large else 8
    box_len = total - head_len
    if box_len < header_len:
        raise ValueError(f"size {total} is below the smallest sample this writes ({head_len + header_len} bytes)")
    if large:
        return struct.pack(">I4sQ", 1, b"mdat", box_len)
    return struct.pack(">I4s", box_len, b"mdat")


def write_mp4(
    path: Path, *, size: int | None = None, duration_seconds: float = 2.0, width: int = 1080,
    height: int = 1920, brand: str = "isom", seed: int = 0, mvhd_version: int | None = None,
    large_mdat: bool = False,
) -> Path:
    """Given a path, write a structurally valid MP4 (ftyp, moov with one video track, mdat) and return path.

    ``size`` makes the file exactly that many bytes (the mdat is padded with seeded pseudo-random
    bytes); ``brand="qt  "`` makes a MOV; ``mvhd_version=1`` and ``large_mdat=True`` exercise the
    64-bit box forms. Raise ValueError if ``size`` is too small to hold the boxes.
    """
    head = _mp4_head(duration_seconds, width, height, brand, mvhd_version)
    total = size if size is not None else len(head) + 16 + 4096
    mdat = _mdat_header(total, len(head), large_mdat)
    with _atomic(path) as f:
        f.write(head + mdat)
        _write_fill(f, total - len(head) - len(mdat), seed)
    return path


def write_sparse_mp4(path: Path, size: int, *, duration_seconds: float = 2.0) -> Path:
    """Given a path and a size, write the same boxes as write_mp4 with the mdat left as a sparse hole."""
    head = _mp4_head(duration_seconds, 1080, 1920, "isom", None)
    mdat = _mdat_header(size, len(head), False)
    with _atomic(path) as f:
        f.write(head + mdat)
        f.truncate(size)
    return path


# --- WebM (EBML) ----------------------------------------------------------------------------


def _vint(value: int, length: int | None = None) -> bytes:
    if length is None:
        length = 1
        while value >= (1 << (7 * length)) - 1:
            length += 1
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


def _el(element_id: int, payload: bytes) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + _vint(len(payload)) + payload


def _uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def write_webm(
    path: Path, *, size: int | None = None, duration_seconds: float = 2.0, width: int = 1080,
    height: int = 1920, seed: int = 0,
) -> Path:
    """Given a path, write a structurally valid WebM (EBML header, Segment with Info, Tracks, one Cluster).

    ``size`` makes the file exactly that many bytes (the one SimpleBlock is padded with seeded bytes).
    Raise ValueError if ``size`` is too small to hold the elements.
    """
    header = _el(0x1A45DFA3, b"".join([
        _el(0x4286, _uint(1)), _el(0x42F7, _uint(1)), _el(0x42F2, _uint(4)), _el(0x42F3, _uint(8)),
        _el(0x4282, b"webm"), _el(0x4287, _uint(4)), _el(0x4285, _uint(2)),
    ]))
    info = _el(0x1549A966, _el(0x2AD7B1, _uint(1_000_000)) + _el(0x4489, struct.pack(">d", duration_seconds * 1000))
               + _el(0x4D80, b"watchfolder") + _el(0x5741, b"watchfolder"))
    video = _el(0xE0, _el(0xB0, _uint(width)) + _el(0xBA, _uint(height)))
    tracks = _el(0x1654AE6B, _el(0xAE, _el(0xD7, _uint(1)) + _el(0x73C5, _uint(1)) + _el(0x83, _uint(1))
                                  + _el(0x86, b"V_VP8") + video))
    block_head = b"\x81\x00\x00\x80"  # track 1, timestamp 0, keyframe
    timestamp = _el(0xE7, _uint(0))
    # Segment, Cluster and SimpleBlock sizes use 8-byte vints, so the padding arithmetic stays linear.
    fixed = len(header) + 4 + 8 + len(info) + len(tracks) + 4 + 8 + len(timestamp) + 1 + 8 + len(block_head)
    total = size if size is not None else fixed + 4096
    frame = total - fixed
    if frame < 0:
        raise ValueError(f"size {total} is below the smallest WebM this writes ({fixed} bytes)")
    block_len = len(block_head) + frame
    cluster_len = len(timestamp) + 1 + 8 + block_len
    segment_len = len(info) + len(tracks) + 4 + 8 + cluster_len
    with _atomic(path) as f:
        f.write(header + b"\x18\x53\x80\x67" + _vint(segment_len, 8) + info + tracks)
        f.write(b"\x1f\x43\xb6\x75" + _vint(cluster_len, 8) + timestamp + b"\xa3" + _vint(block_len, 8) + block_head)
        _write_fill(f, frame, seed)
    return path


# --- Images ---------------------------------------------------------------------------------


def _colour(seed: int) -> tuple[int, int, int]:
    """A colour per seed; multiplying by an odd number is a bijection mod 2**24, so seeds below 2**24 differ."""
    value = (seed * 2654435761 + 0x3C6EF3) % (1 << 24)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _canonical_codes(counts: list[int], symbols: list[int]) -> dict[int, str]:
    codes: dict[int, str] = {}
    code, k = 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[k]] = format(code, f"0{length}b")
            code, k = code + 1, k + 1
        code <<= 1
    return codes


_DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # JPEG Annex K.3, luminance DC
_DC_CODES = _canonical_codes(_DC_COUNTS, list(range(12)))
_AC_COUNTS = [1] + [0] * 15  # one symbol, EOB (0x00), coded as "0": every block is DC only


def write_jpeg(path: Path, width: int = 1080, height: int = 1350, *, seed: int = 0) -> Path:
    """Given a path and dimensions, write a decodable baseline JPEG of one solid colour chosen by seed.

    Every 8x8 block is DC-only (quantiser 1), so the entropy data after the first MCU is all zero
    bits. A comment segment carries the seed, so different seeds always give different bytes.
    Raise ValueError for dimensions outside 1..65535.
    """
    if not (0 < width < 65536 and 0 < height < 65536):
        raise ValueError(f"JPEG dimensions must be 1..65535, got {width}x{height}")
    r, g, b = _colour(seed)
    ycc = (0.299 * r + 0.587 * g + 0.114 * b,
           128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
           128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    first = ""
    for value in ycc:
        dc = round(8 * (min(255.0, max(0.0, value)) - 128))  # DC of a flat block = 8 * (level - 128)
        bits = abs(dc).bit_length()
        extra = format(dc if dc >= 0 else dc + (1 << bits) - 1, f"0{bits}b") if bits else ""
        first += _DC_CODES[bits] + extra + "0"  # then EOB
    mcus = ((width + 7) // 8) * ((height + 7) // 8)
    stream = first + "0" * (9 * (mcus - 1))  # later blocks: DC difference 0 ("00") + EOB ("0")
    stream += "1" * (-len(stream) % 8)
    data = int(stream, 2).to_bytes(len(stream) // 8, "big").replace(b"\xff", b"\xff\x00")
    parts = [
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xFE, f"watchfolder sample seed={seed}".encode()),
        _segment(0xDB, b"\x00" + bytes([1] * 64)),
        _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"),
        _segment(0xC4, b"\x00" + bytes(_DC_COUNTS) + bytes(range(12)) + b"\x10" + bytes(_AC_COUNTS) + b"\x00"),
        _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
        data,
        b"\xff\xd9",
    ]
    return _write_bytes(path, lambda f: f.write(b"".join(parts)))


def write_webp(path: Path, width: int = 1080, height: int = 1350, *, seed: int = 0) -> Path:
    """Given a path and dimensions, write a decodable lossless (VP8L) WebP of one solid colour chosen by seed.

    Each of the five prefix codes has a single symbol, so pixels take zero bits and any size costs
    a few bytes. Seeds below 2**24 give different colours. Raise ValueError outside 1..16384.
    """
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise ValueError(f"WebP dimensions must be 1..16384, got {width}x{height}")
    r, g, b = _colour(seed)
    fields = [(width - 1, 14), (height - 1, 14), (0, 1), (0, 3),  # size, alpha unused, version 0
              (0, 1), (0, 1), (0, 1)]  # no transform, no colour cache, no meta prefix codes
    for symbol in (g, r, b, 255):  # green, red, blue, alpha: simple code, one 8-bit symbol
        fields += [(1, 1), (0, 1), (1, 1), (symbol, 8)]
    fields += [(1, 1), (0, 1), (0, 1), (0, 1)]  # distance: simple code, one 1-bit symbol (0)
    acc, nbits = 0, 0
    for value, width_bits in fields:  # VP8L packs bits least significant first
        acc |= value << nbits
        nbits += width_bits
    data = b"\x2f" + acc.to_bytes((nbits + 7) // 8, "little")
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return _write_bytes(path, lambda f: f.write(b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk))


def write_png(path: Path, width: int, height: int) -> Path:
    """Given a path and dimensions, write a real (zlib-compressed, RGB) PNG, for "PNG refused" tests."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    def write(f: BinaryIO) -> None:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        compressor = zlib.compressobj(6)
        # a horizontal red gradient: compresses well and is visibly an image when opened
        row = b"\x00" + b"".join(bytes((x * 255 // max(1, width - 1), 128, 64)) for x in range(width))
        idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
        f.write(chunk(b"IDAT", idat) + chunk(b"IEND", b""))

    return _write_bytes(path, write)


def _write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    with _atomic(path) as f:
        write(f)
    return path
