"""Hand-made video headers: the committed fixtures under tests/fixtures/media/, and how they were made.

Each file is a real container layout (ftyp, moov with its tracks, mdat; or EBML, Segment, Info, Tracks,
a Cluster) whose headers claim what the fixture is about (120 fps, 11 minutes, a rotation) with only a
few bytes of media data. ``python -m tests.media_headers`` writes them again; test_probe checks the
committed bytes still match.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "media"
IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
ROTATE_90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big"), *payload)


def ftyp(brand: bytes = b"isom") -> bytes:
    return box(b"ftyp", brand, struct.pack(">I", 0x200), brand, b"iso2mp41")


def mvhd(timescale: int, duration: int) -> bytes:
    return full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, duration), struct.pack(">IH10x", 0x10000, 0x100),
                struct.pack(">9i", *IDENTITY), bytes(24), struct.pack(">I", 3))


def tkhd(track_id: int, width: int, height: int, matrix: tuple[int, ...] = IDENTITY) -> bytes:
    return full(b"tkhd", 0, 3, struct.pack(">IIIII8xhhh2x", 0, 0, track_id, 0, 0, 0, 0, 0),
                struct.pack(">9i", *matrix), struct.pack(">II", width << 16, height << 16))


def sample_entry(fourcc: bytes, width: int, height: int) -> bytes:
    return box(fourcc, bytes(6), struct.pack(">H", 1), bytes(16),
               struct.pack(">HHII4xH", width, height, 0x480000, 0x480000, 1), bytes(32), struct.pack(">Hh", 0x18, -1))


def mp4a(object_type: int = 0x40) -> bytes:
    es = bytes([0x03, 25, 0, 1, 0]) + bytes([0x04, 17, object_type, 0x15]) + bytes(15)
    return box(b"mp4a", bytes(6), struct.pack(">H", 1), bytes(8), struct.pack(">HH4xI", 2, 16, 48000 << 16),
               full(b"esds", 0, 0, es))


def trak(track_id: int, handler: bytes, entry: bytes, timescale: int, duration: int, *, width: int = 0,
         height: int = 0, matrix: tuple[int, ...] = IDENTITY, samples: int = 0,
         stts: list[tuple[int, int]] | None = None) -> bytes:
    stts_entries = stts if stts is not None else ([(samples, duration // samples)] if samples else [])
    stbl = box(b"stbl", full(b"stsd", 0, 0, struct.pack(">I", 1), entry),
               full(b"stts", 0, 0, struct.pack(">I", len(stts_entries)),
                    b"".join(struct.pack(">II", n, d) for n, d in stts_entries)),
               full(b"stsc", 0, 0, bytes(4)), full(b"stsz", 0, 0, struct.pack(">II", 0, samples)),
               full(b"stco", 0, 0, bytes(4)))
    mdhd = full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = full(b"hdlr", 0, 0, b"\0\0\0\0", handler, bytes(12), b"handler\0")
    return box(b"trak", tkhd(track_id, width, height, matrix), box(b"mdia", mdhd, hdlr, box(b"minf", stbl)))


def mp4(*, fourcc: bytes = b"avc1", width: int = 1080, height: int = 1920, fps: float = 30, seconds: float = 12,
        brand: bytes = b"isom", matrix: tuple[int, ...] = IDENTITY, audio: bytes | None = None,
        stts: list[tuple[int, int]] | None = None) -> bytes:
    """An MP4/MOV whose headers claim a ``seconds``-long video at ``fps`` (timescale 90000) and a little mdat."""
    scale = 90000
    units = sum(n * d for n, d in stts) if stts else round(seconds * scale)
    seconds = units / scale
    frames = sum(n for n, _ in stts) if stts else round(seconds * fps)
    tracks = [trak(1, b"vide", sample_entry(fourcc, width, height), scale, units, width=width, height=height,
                   matrix=matrix, samples=frames, stts=stts)]
    if audio is not None:
        tracks.append(trak(2, b"soun", audio, 48000, round(seconds * 48000), samples=round(seconds * 48000 / 1024)))
    return ftyp(brand) + box(b"moov", mvhd(1000, round(seconds * 1000)), *tracks) + box(b"mdat", bytes(64))


def fragmented_mp4(*, fps: int = 30, fragments: int = 4, per_fragment: int = 30) -> bytes:
    """An fMP4 as ``-movflags frag_keyframe+empty_moov`` writes it: an empty moov, then moof/mdat pairs."""
    scale, step = 15360, 15360 // fps
    moov = box(b"moov", mvhd(1000, 0), trak(1, b"vide", sample_entry(b"avc1", 720, 1280), scale, 0, width=720,
                                             height=1280),
               box(b"mvex", full(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, step, 0, 0))))
    out = ftyp(b"iso5") + moov
    for index in range(fragments):
        tfhd = full(b"tfhd", 0, 0x020000, struct.pack(">I", 1))
        tfdt = full(b"tfdt", 1, 0, struct.pack(">Q", index * per_fragment * step))
        trun = full(b"trun", 0, 0x000201, struct.pack(">Ii", per_fragment, 0),
                    b"".join(struct.pack(">I", 16) for _ in range(per_fragment)))
        out += box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", index + 1)), box(b"traf", tfhd, tfdt, trun))
        out += box(b"mdat", bytes(16 * per_fragment))
    return out


def _vint(value: int) -> bytes:
    length = 1
    while value >= (1 << (7 * length)) - 1:
        length += 1
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


def el(element_id: int, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + _vint(len(body)) + body


def uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def webm(*, codec: bytes = b"V_VP9", width: int = 1080, height: int = 1920, fps: float = 30, seconds: float = 8,
         audio: bytes | None = b"A_OPUS") -> bytes:
    header = el(0x1A45DFA3, el(0x4286, uint(1)), el(0x42F7, uint(1)), el(0x42F2, uint(4)), el(0x42F3, uint(8)),
                el(0x4282, b"webm"), el(0x4287, uint(4)), el(0x4285, uint(2)))
    info = el(0x1549A966, el(0x2AD7B1, uint(1_000_000)), el(0x4489, struct.pack(">d", seconds * 1000)))
    video = el(0xAE, el(0xD7, uint(1)), el(0x73C5, uint(1)), el(0x83, uint(1)), el(0x86, codec),
               el(0x23E383, uint(round(1e9 / fps))), el(0xE0, el(0xB0, uint(width)), el(0xBA, uint(height))))
    sound = el(0xAE, el(0xD7, uint(2)), el(0x73C5, uint(2)), el(0x83, uint(2)), el(0x86, audio)) if audio else b""
    cluster = el(0x1F43B675, el(0xE7, uint(0)), el(0xA3, b"\x81\x00\x00\x80" + bytes(64)))
    return header + el(0x18538067, info, el(0x1654AE6B, video, sound), cluster)


# name → (how it is made, what `judge` says with the default limits: "accepted" or TikTok's code)
FIXTURE_SPECS: dict[str, tuple[Callable[[], bytes], str]] = {
    "h264_aac.mp4": (lambda: mp4(audio=mp4a()), "accepted"),
    "h265.mp4": (lambda: mp4(fourcc=b"hvc1", width=2160, height=3840, fps=60), "accepted"),
    "vp9_opus.webm": (lambda: webm(), "accepted"),
    "rotated.mov": (lambda: mp4(brand=b"qt  ", width=1920, height=1080, matrix=ROTATE_90, audio=mp4a()), "accepted"),
    "fragmented.mp4": (fragmented_mp4, "accepted"),
    "vfr.mp4": (lambda: mp4(stts=[(100, 3000), (100, 1500), (100, 3750)]), "accepted"),  # 30, 60, 24 fps
    "fps120_4k.mp4": (lambda: mp4(width=3840, height=2160, fps=120), "frame_rate_check_failed"),
    "height240.mp4": (lambda: mp4(width=426, height=240), "picture_size_check_failed"),
    "eleven_minutes.mp4": (lambda: mp4(seconds=660), "duration_check_failed"),
    "five_minutes.mp4": (lambda: mp4(seconds=300), "accepted"),
    "av1.mp4": (lambda: mp4(fourcc=b"av01"), "file_format_check_failed"),
}


def write_all(folder: Path = FIXTURES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (make, _) in FIXTURE_SPECS.items():
        (folder / name).write_bytes(make())


if __name__ == "__main__":
    write_all()
