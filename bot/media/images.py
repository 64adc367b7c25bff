"""Pictures in and out: the type told by the bytes (not by the sender), the size told by the header before any
decoding, and scaling for vision models."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.core.errors import Refusal
from bot.core.i18n import _, __

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

# The only decoders Pillow may use: every other plugin (PSD, ICO, PCX…) is attack surface nobody needs here.
PICTURE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
DEFAULT_MAX_PIXELS = 40_000_000


# Pillow's own bomb check only warns below twice its limit; every picture goes through opened(), which refuses by
# the header against MAX_IMAGE_PIXELS, so the warning would only be noise in the log.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class PictureTooLarge(Refusal):
    """A picture whose header promises more pixels than the bot decodes (a 1 MB PNG can unpack to gigabytes)."""

    def __init__(self, max_pixels: int, width: int = 0, height: int = 0) -> None:
        limit = _megapixels(max_pixels)
        if width and height:
            text = _(
                "That picture is too large: {width}×{height} pixels. I take pictures of up to {limit} megapixels; "
                "please send a smaller one."
            ).format(width=width, height=height, limit=limit)
        else:
            text = _(
                "That picture is too large. I take pictures of up to {limit} megapixels; please send a smaller one."
            ).format(limit=limit)
        super().__init__(text)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g}"


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    mime: str

    @property
    def filename(self) -> str:
        return "image" + ACCEPTED_TYPES.get(self.mime, "")

    def data_url(self) -> str:
        """Blocking for big pictures (base64 of megabytes): call it in a worker thread, see data_urls()."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


async def data_urls(pictures: Sequence[Picture]) -> list[str]:
    """The pictures as data URLs, encoded off the event loop (a 20 MB picture is 27 MB of base64)."""
    return await asyncio.to_thread(lambda: [picture.data_url() for picture in pictures])


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


@contextlib.contextmanager
def opened(data: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """Blocking: the picture opened from its header only, refused before a single pixel is decoded when it is
    not one of PICTURE_FORMATS or holds more than `max_pixels`."""
    try:
        with Image.open(io.BytesIO(data), formats=PICTURE_FORMATS) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise UNREADABLE
            if width * height > max_pixels:
                raise PictureTooLarge(max_pixels, width, height)
            yield image
    except Image.DecompressionBombError:  # beyond even Pillow's own limit, before the size could be read here
        raise PictureTooLarge(max_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        # SyntaxError is how some Pillow plugins report a corrupt header.
        raise UNREADABLE from None


def check_picture(data: bytes, max_pixels: int) -> None:
    """Blocking: refuse a picture by its header (type, pixel count) without decoding it."""
    with opened(data, max_pixels):
        pass


def picture_from(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Blocking: a picture of an accepted type, checked by its header; other formats Pillow reads (BMP, TIFF) are
    converted to PNG."""
    with opened(data, max_pixels) as image:
        mime = sniff_mime(data)
        if mime is not None:
            return Picture(data, mime)
        return Picture(_encode(image, keep_alpha=True), "image/png")


def fit_for_vision(picture: Picture, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Blocking: scale a picture down to what vision models use, re-encoding only when it is too big."""
    with opened(picture.data, max_pixels) as image:
        too_large = max(image.size) > VISION_MAX_SIDE or len(picture.data) > VISION_MAX_BYTES
        if not too_large:
            return picture
        # A JPEG can be decoded at 1/2, 1/4 or 1/8 scale straight away: a fraction of the work and memory.
        image.draft("RGB", (VISION_MAX_SIDE, VISION_MAX_SIDE))
        image.thumbnail((VISION_MAX_SIDE, VISION_MAX_SIDE), Image.Resampling.LANCZOS)
        has_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
        if has_alpha:
            return Picture(_encode(image, keep_alpha=True), "image/png")
        return Picture(_encode(image, keep_alpha=False), "image/jpeg")


async def prepare_for_vision(picture: Picture, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    return await asyncio.to_thread(fit_for_vision, picture, max_pixels)


def _encode(image: Image.Image, keep_alpha: bool) -> bytes:
    out = io.BytesIO()
    if keep_alpha:
        image.save(out, format="PNG", optimize=False)
    else:
        image.convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


async def editable(picture: Picture, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Image models edit JPEG, PNG and WebP; anything else (a GIF) is converted to PNG first."""
    if picture.mime in EDITABLE_TYPES:
        return picture
    return await asyncio.to_thread(_to_png, picture, max_pixels)


def _to_png(picture: Picture, max_pixels: int) -> Picture:
    with opened(picture.data, max_pixels) as image:
        return Picture(_encode(image.convert("RGBA"), keep_alpha=True), "image/png")


def as_telegram_photo(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """Blocking: Telegram takes JPEG and PNG photos reliably; anything else (a WebP from a CDN) becomes a JPEG."""
    with opened(data, max_pixels) as image:
        if sniff_mime(data) in ("image/jpeg", "image/png"):
            return data
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=92)
        return out.getvalue()
