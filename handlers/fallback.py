"""The catch-all, registered last: unknown commands and messages the bot cannot use yet."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message

from bot.core.i18n import _


def build_router() -> Router:
    router = Router(name=__name__)
    private = F.chat.type == ChatType.PRIVATE
    router.message.register(unknown_command, private, F.text.startswith("/"))
    # In groups the bot speaks only when addressed: an unknown command is answered only when it names the bot.
    router.message.register(unknown_command, ~private, F.text.startswith("/"), CommandNamingMe())
    router.message.register(cannot_use, private)
    # Every press is answered, even of a button from another bot version or one nobody issued.
    router.callback_query.register(unknown_button)
    return router


class CommandNamingMe(Filter):
    """`/something@ThisBot`: a command meant for this bot, not for another one in the group."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        command = (message.text or "").split(maxsplit=1)[0]
        _, _, mention = command.partition("@")
        return bool(mention) and mention.lower() == ((await bot.me()).username or "").lower()


async def unknown_command(message: Message) -> None:
    await message.answer(_("I don't know that command. /help lists what I can do."))


async def cannot_use(message: Message) -> None:
    await message.answer(
        _("I can't use that kind of message yet. Send me text, a voice note or a photo, or see /help.")
    )


async def unknown_button(query: CallbackQuery) -> None:
    await query.answer(_("This button no longer works."), show_alert=True)
