"""The pictures a message carries: a photo (its largest size) or an image sent as a file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import Message

from bot.core.errors import Refusal
from bot.core.i18n import __
from bot.media.images import Picture, PictureTooLarge, picture_from
from bot.telegram.downloads import check_downloadable, download


@dataclass(frozen=True, slots=True)
class IncomingImage:
    file_id: str
    file_size: int | None
    pixels: int = 0  # what Telegram says a photo measures (0: unknown, as for files)


def image_in(message: Message) -> IncomingImage | None:
    if message.photo:
        largest = message.photo[-1]  # Telegram lists the sizes smallest first
        return IncomingImage(largest.file_id, largest.file_size, largest.width * largest.height)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return IncomingImage(document.file_id, document.file_size)
    return None


def has_image(message: Message | None) -> bool:
    return message is not None and image_in(message) is not None


def is_other_file(message: Message) -> bool:
    """A document that is not an image (a PDF, a zip…)."""
    return message.document is not None and image_in(message) is None


def images_in(messages: Iterable[Message], max_pixels: int) -> list[IncomingImage]:
    """The pictures of these messages, refusing those that say they are too big before anything is downloaded.
    (What a message says can be a lie: fetch_pictures checks each picture's own header again.)"""
    found = [image for message in messages if (image := image_in(message)) is not None]
    for image in found:
        check_downloadable(image.file_size)
        if image.pixels > max_pixels:
            raise PictureTooLarge(max_pixels)
    return found


async def fetch_pictures(bot: Bot, images: list[IncomingImage], max_pixels: int) -> list[Picture]:
    """Download and identify by their bytes and header; a file that is no readable image, or too many pixels, is
    refused in words before a pixel of it is decoded."""
    # The header check, and converting a BMP or TIFF, are Pillow work: off the event loop.
    return [
        await asyncio.to_thread(picture_from, await download(bot, image.file_id, image.file_size), max_pixels)
        for image in images
    ]


NOT_AN_IMAGE = Refusal(__("I can only work with pictures: send a photo, or a JPEG, PNG or WebP image as a file."))
