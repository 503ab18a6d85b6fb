"""Optional photo conversion (``photos.convert: true``): PNG → JPEG, and downscaling to TikTok's 1080p.

Pillow is an optional extra (``pip install 'watchfolder[photos]'``), imported only here and only when
conversion is switched on, so the daemon runs without it. The user's file is never changed: the
converted JPEG is written to a temporary file that the media host stages in its place.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from watchfolder.core.errors import MediaError
from watchfolder.media import probe as media

JPEG_QUALITY = 90   # visually lossless for photos; a 1080x1920 frame stays far below 20 MB
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INSTALL_HINT = "pip install 'watchfolder[photos]'"


def available() -> bool:
    """Return True when Pillow can be imported (without importing it)."""
    return importlib.util.find_spec("PIL") is not None


def _is_png(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(_PNG_MAGIC)) == _PNG_MAGIC


def needs_conversion(path: Path) -> bool:
    """Given an image that ``check_photos(..., convert=True)`` accepted, return True when it must be
    converted before TikTok may have it (a PNG, or beyond 1080p); False when it goes as it is."""
    try:
        media.check_image(path)
    except MediaError:
        return True
    return False


def check_photos(paths: Sequence[Path], *, convert: bool) -> list[bool]:
    """Given a photo post's images in order and whether conversion is on, check each before any API
    call; return, per image, whether it will be converted.

    Without ``convert`` this is ``media.check_photo_set`` (nothing is converted). With it, a PNG or an
    image beyond 1080p is accepted for conversion when Pillow can open it. Raise MediaError as
    ``check_photo_set`` does (the message starts with the image's name), or ``conversion_unavailable``
    when an image needs conversion and Pillow is not installed.
    """
    if not convert or not paths or len(paths) > media.MAX_PHOTOS:
        media.check_photo_set(paths)
        return [False] * len(paths)
    plan = []
    for path in paths:
        name = Path(path).name
        try:
            media.check_image(path)
            plan.append(False)
            continue
        except MediaError as exc:
            convertible = exc.code == "image_too_large_resolution" or (
                exc.code == "unsupported_media" and _is_png(path))
            if not convertible:
                raise MediaError(exc.code, f"{name}: {exc.message}") from exc
        if not available():
            raise MediaError("conversion_unavailable", f"{name}: needs converting (PNG, or beyond 1080p) and "
                             f"photos.convert is on, but Pillow is not installed: {INSTALL_HINT}")
        _verify(path)
        plan.append(True)
    return plan


def _verify(path: Path) -> None:
    """Raise MediaError unless Pillow can read the image's header (a damaged PNG is refused now, not later)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError("unsupported_media", f"{Path(path).name}: cannot be converted: the image is damaged "
                         f"({type(exc).__name__})") from None


def target_size(width: int, height: int) -> tuple[int, int]:
    """Given an image's size, return the largest size with the same aspect ratio within TikTok's 1080p
    limit (shorter side ≤ 1080, longer side ≤ 1920); the size itself when it already fits."""
    short, long = min(width, height), max(width, height)
    scale = min(1.0, media.MAX_IMAGE_SHORT_SIDE / short, media.MAX_IMAGE_LONG_SIDE / long)
    if scale >= 1.0:
        return width, height
    # Floor, never round: a side rounded up would land one pixel past the limit.
    return max(1, int(width * scale)), max(1, int(height * scale))


def to_jpeg(source: Path, folder: Path) -> Path:
    """Given an image and a folder, write a JPEG within TikTok's limits there and return its path.

    The picture is turned upright from its EXIF orientation, transparency is laid on white, and it is
    downscaled to ``target_size``. The temporary name starts with ``.watchfolder-`` and ends in
    ``.tmp``, so a crash leaves nothing the media host's sweep does not clear. Raise MediaError if
    Pillow is missing or cannot read the image, or if the result is still over TikTok's 20 MB.
    """
    if not available():
        raise MediaError("conversion_unavailable", f"{Path(source).name}: Pillow is not installed: {INSTALL_HINT}")
    from PIL import Image, ImageOps, UnidentifiedImageError

    dest = Path(folder) / f".watchfolder-convert-{secrets.token_hex(8)}.tmp"
    try:
        with Image.open(source) as opened:
            image: Any = ImageOps.exif_transpose(opened) or opened
            image = _flatten(image, Image)
            size = target_size(*image.size)
            if size != image.size:
                image = image.resize(size, Image.Resampling.LANCZOS)
            image.save(dest, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        dest.unlink(missing_ok=True)
        raise MediaError("unsupported_media", f"{Path(source).name}: cannot be converted ({type(exc).__name__})"
                         ) from None
    if os.stat(dest).st_size > media.MAX_IMAGE_BYTES:
        dest.unlink(missing_ok=True)
        raise MediaError("too_large", f"{Path(source).name}: still over TikTok's 20 MB after conversion")
    os.chmod(dest, 0o644)  # the media host's server and publish_dir's web server must be able to read it
    return dest


def _flatten(image: Any, image_module: Any) -> Any:
    """Return an RGB version of ``image``; transparent parts become white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = image_module.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")
