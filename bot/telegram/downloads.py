"""Fetching the files users send, within the Bot API's 20 MB download limit for bots."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from bot.core.errors import Refusal
from bot.core.i18n import _

DOWNLOAD_LIMIT = 20 * 1024 * 1024


def too_big(size: int | None) -> Refusal:
    if size is None:
        return Refusal(
            _("That file is too large. Telegram lets me download files of up to 20 MB; please send a smaller one.")
        )
    return Refusal(
        _(
            "That file is too large ({size} MB). Telegram lets me download files of up to 20 MB; "
            "please send a smaller one."
        ).format(size=round(size / 1024 / 1024))
    )


def check_downloadable(size: int | None) -> None:
    """Refuse before anything is fetched or charged; Telegram would refuse the download anyway."""
    if size is not None and size > DOWNLOAD_LIMIT:
        raise too_big(size)


async def download(bot: Bot, file_id: str, size: int | None) -> bytes:
    try:
        buffer = await bot.download(file_id)
    except TelegramBadRequest as error:
        if "too big" in error.message.lower():
            raise too_big(size) from None
        raise
    assert buffer is not None  # no destination given: aiogram returns a BytesIO
    return buffer.getvalue()
