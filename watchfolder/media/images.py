"""Photos: JPEG and WebP by content, their pixel size, and TikTok's limits for a photo post.

Every refusal is a MediaError with one of our codes and a message a user can act on; messages never
name the file (a photo set's prefix its image's name). PermissionError propagates untouched.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from watchfolder.core.errors import MediaError
from watchfolder.media.info import ImageInfo
from watchfolder.media.sniff import HEAD, describe

# TikTok says "20 MB" per photo without saying which MB; 20 * 10**6 is the smaller reading,
# so an image we accept is under the limit whichever one TikTok means.
MAX_IMAGE_BYTES = 20 * 1000 * 1000
MAX_PHOTOS = 35
# TikTok says photos are "maximum 1080p". 1080p names a 1920x1080 frame, and photos may be portrait
# or landscape, so we read it as: the shorter side at most 1080 and the longer side at most 1920.
MAX_IMAGE_SHORT_SIDE = 1080
MAX_IMAGE_LONG_SIDE = 1920


def _jpeg_size(f: BinaryIO) -> tuple[int, int]:
    """Given a JPEG after its SOI marker, walk the segments to the frame header and return (width, height)."""
    f.seek(2)
    for _ in range(10_000):
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            break
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            break
        length = f.read(2)
        if len(length) < 2:
            break
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            frame = f.read(5)
            if len(frame) == 5:
                height, width = struct.unpack(">xHH", frame)
                if width and height:
                    return width, height
            break
        f.seek(struct.unpack(">H", length)[0] - 2, os.SEEK_CUR)
    raise MediaError("unsupported_media", "the JPEG has no readable frame header: it is damaged or incomplete")


def _webp_size(head: bytes, size: int) -> tuple[int, int]:
    declared = struct.unpack_from("<I", head, 4)[0] + 8
    if declared > size:
        raise MediaError("unsupported_media", f"the WebP ends early ({size:,} of {declared:,} bytes): "
                         "the copy looks incomplete")
    kind, data = head[12:16], head[20:30]
    if kind == b"VP8 " and len(data) == 10 and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 6)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = struct.unpack_from("<I", data, 1)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(data) == 10:
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    raise MediaError("unsupported_media", "the WebP has no readable image header: it is damaged")


def check_image(path: Path) -> ImageInfo:
    """Given a photo file, return its format and dimensions; raise MediaError if TikTok would refuse it.

    Codes: empty_file, unsupported_media (not JPEG/WebP, PNG, damaged), too_large (over
    MAX_IMAGE_BYTES), image_too_large_resolution (beyond MAX_IMAGE_SHORT_SIDE x MAX_IMAGE_LONG_SIDE).
    """
    size = os.stat(path).st_size
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(HEAD)
        what = describe(head)
        if what == "a PNG image":
            raise MediaError("unsupported_media",
                             "PNG is not accepted by TikTok: convert to JPEG or set photos.convert: true")
        if what == "a HEIC image":
            raise MediaError("unsupported_media", "HEIC is not accepted by TikTok: convert to JPEG")
        if what not in ("a JPEG image", "a WebP image"):
            raise MediaError("unsupported_media", f"not an image TikTok accepts (JPEG or WebP): it looks like {what}")
        if size > MAX_IMAGE_BYTES:
            raise MediaError("too_large", f"{size:,} bytes is over TikTok's 20 MB limit for a photo "
                             f"({MAX_IMAGE_BYTES:,} bytes)")
        fmt = "jpeg" if what == "a JPEG image" else "webp"
        width, height = _jpeg_size(f) if fmt == "jpeg" else _webp_size(head, size)
    if min(width, height) > MAX_IMAGE_SHORT_SIDE or max(width, height) > MAX_IMAGE_LONG_SIDE:
        raise MediaError("image_too_large_resolution",
                         f"{width}x{height} is beyond TikTok's 1080p limit for photos (at most "
                         f"{MAX_IMAGE_SHORT_SIDE} on the shorter side and {MAX_IMAGE_LONG_SIDE} on the longer): "
                         "downscale it or set photos.convert: true")
    return ImageInfo(Path(path), fmt, width, height, size)


def check_photo_set(paths: Sequence[Path]) -> list[ImageInfo]:
    """Given a photo post's images in order, check each and return their infos.

    Raise MediaError empty_photo_set for none, too_many_photos for more than MAX_PHOTOS, or the first
    bad image's error with its message prefixed by the image's name.
    """
    if not paths:
        raise MediaError("empty_photo_set", "the folder holds no .jpg, .jpeg or .webp image")
    if len(paths) > MAX_PHOTOS:
        raise MediaError("too_many_photos", f"{len(paths)} images: TikTok allows at most {MAX_PHOTOS} in one post")
    infos = []
    for path in paths:
        try:
            infos.append(check_image(path))
        except MediaError as exc:
            raise MediaError(exc.code, f"{Path(path).name}: {exc.message}") from exc
    return infos
