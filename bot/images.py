"""Pictures in and out: the type told by the bytes (not by the sender), and scaling for vision models."""

from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import Refusal
from bot.i18n import __

# What vision and image models accept, by MIME type, with the extension the upload is named by.
ACCEPTED_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}
EDITABLE_TYPES = {"image/jpeg", "image/png", "image/webp"}

# Vision models scale anything bigger down to fit 2048x2048 themselves: sending more only costs upload time.
VISION_MAX_SIDE = 2048
VISION_MAX_BYTES = 4 * 1024 * 1024
# Bots may send photos up to 10 MB; a bigger picture goes as a file.
TELEGRAM_PHOTO_LIMIT = 10 * 1024 * 1024


UNREADABLE = Refusal(
    __("I can't read that image. Please send a JPEG, PNG or WebP picture, or send it as a photo.")
)


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    mime: str

    @property
    def filename(self) -> str:
        return "image" + ACCEPTED_TYPES.get(self.mime, "")

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def sniff_mime(data: bytes) -> str | None:
    """The image type from the file's magic numbers, or None when it is none of the accepted ones."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def picture_from(data: bytes) -> Picture:
    """A picture of an accepted type, converting other formats Pillow reads (BMP, TIFF…) to PNG."""
    mime = sniff_mime(data)
    if mime is not None:
        return Picture(data, mime)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return Picture(_encode(image, keep_alpha=True), "image/png")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UNREADABLE from None


def fit_for_vision(picture: Picture) -> Picture:
    """Blocking: scale a picture down to what vision models use, re-encoding only when it is too big."""
    try:
        with Image.open(io.BytesIO(picture.data)) as image:
            too_large = max(image.size) > VISION_MAX_SIDE or len(picture.data) > VISION_MAX_BYTES
            if not too_large:
                return picture
            image.thumbnail((VISION_MAX_SIDE, VISION_MAX_SIDE), Image.Resampling.LANCZOS)
            has_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
            if has_alpha:
                return Picture(_encode(image, keep_alpha=True), "image/png")
            return Picture(_encode(image, keep_alpha=False), "image/jpeg")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UNREADABLE from None


async def prepare_for_vision(picture: Picture) -> Picture:
    return await asyncio.to_thread(fit_for_vision, picture)


def _encode(image: Image.Image, keep_alpha: bool) -> bytes:
    out = io.BytesIO()
    if keep_alpha:
        image.save(out, format="PNG", optimize=False)
    else:
        image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


async def editable(picture: Picture) -> Picture:
    """Image models edit JPEG, PNG and WebP; anything else (a GIF) is converted to PNG first."""
    if picture.mime in EDITABLE_TYPES:
        return picture
    return await asyncio.to_thread(_to_png, picture)


def _to_png(picture: Picture) -> Picture:
    try:
        with Image.open(io.BytesIO(picture.data)) as image:
            return Picture(_encode(image.convert("RGBA"), keep_alpha=True), "image/png")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UNREADABLE from None
