"""What a file looks like from its first bytes: for refusals that say "it looks like a PNG image"."""

from __future__ import annotations

HEAD = 4096  # bytes of a file's start every sniffer needs

_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg file"), (b"fLaC", "a FLAC audio file"), (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"), (b"\x1aE\xdf\xa3", "a Matroska (MKV) video"),
]
# QuickTime files written before ``ftyp`` existed start with one of these top-level boxes.
LEGACY_MOV_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip")


def describe(head: bytes) -> str:
    """Given a file's first bytes, say what it looks like ("a PNG image", "a text file", …)."""
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF":
        riff = {b"WEBP": "a WebP image", b"AVI ": "an AVI video", b"WAVE": "a WAV audio file"}
        return riff.get(head[8:12], "a RIFF file")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC image"
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        if brand in (b"M4A ", b"M4B ", b"M4P ", b"F4A "):
            return "an M4A audio file"
        return "an MP4-family file"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\0" not in head and is_utf8(head)):
        return "an HTML page" if b"<html" in head[:1024].lower() else "a text file"
    return "no format we recognise"


def is_utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the end of the sample is still text
    return True


def video_family(head: bytes) -> str | None:
    """Given a file's first bytes, return "bmff" (MP4/MOV), "ebml" (WebM/Matroska) or None."""
    if head[4:8] == b"ftyp":
        return "bmff" if describe(head) == "an MP4-family file" else None
    if head[4:8] in LEGACY_MOV_BOXES:
        return "bmff"
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "ebml"
    return None
