"""The catch-all, registered last: unknown commands and messages the bot cannot use yet."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message


def build_router() -> Router:
    router = Router(name=__name__)
    # In groups the bot only speaks when addressed; a stray sticker there is none of its business.
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(cannot_use)
    # Every press is answered, even of a button from another bot version or one nobody issued.
    router.callback_query.register(unknown_button)
    return router


async def unknown_command(message: Message) -> None:
    await message.answer("I don't know that command. /help lists what I can do.")


async def cannot_use(message: Message) -> None:
    await message.answer(
        "I can't use that kind of message yet. Send me text, a voice note or a photo, or see /help."
    )


async def unknown_button(query: CallbackQuery) -> None:
    await query.answer("This button no longer works.", show_alert=True)
