"""Who a message is for: in groups the bot answers only when it is mentioned or replied to."""

from __future__ import annotations

from aiogram import Bot
from aiogram.enums import ChatType, MessageEntityType
from aiogram.filters import Filter
from aiogram.types import Message, User

from bot.telegram.context import replied_message


class AddressedToBot(Filter):
    """True in private chats; in groups, when the text or caption mentions the bot or the message replies to it.

    Passes `question`: the text or caption without the bot's @mention, for the handler to use.
    """

    def __init__(self, replies_only: bool = False) -> None:
        self._replies_only = replies_only  # voice notes in groups count only as replies

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, str]:
        text = message.text or message.caption or ""
        if message.chat.type == ChatType.PRIVATE:
            return {"question": text.strip()}
        me = await bot.me()  # cached by aiogram after the first call
        replied_to = replied_message(message)
        if replied_to is not None and replied_to.from_user is not None and replied_to.from_user.id == me.id:
            return {"question": _without_mention(message, me).strip()}
        if not self._replies_only and _mentions(message, me):
            return {"question": _without_mention(message, me).strip()}
        return False


def _mentions(message: Message, me: User) -> bool:
    text = message.text or message.caption or ""
    for entity in message.entities or message.caption_entities or []:
        if entity.type == MessageEntityType.MENTION:
            if entity.extract_from(text).lower() == f"@{me.username}".lower():
                return True
        elif entity.type == MessageEntityType.TEXT_MENTION and entity.user and entity.user.id == me.id:
            return True
    return False


def _without_mention(message: Message, me: User) -> str:
    text = message.text or message.caption or ""
    handle = f"@{me.username}"
    # Mentions are case-insensitive; cut every spelling of ours, keep other people's.
    lowered, index = text.lower(), 0
    kept = []
    while (found := lowered.find(handle.lower(), index)) != -1:
        kept.append(text[index:found])
        index = found + len(handle)
    kept.append(text[index:])
    return " ".join(part.strip() for part in kept if part.strip())
