"""The actor of each update: the chat a message was sent on behalf of, else the user it came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update, User

from bot.core.actors import Actor


def actor_of(update: Update, user: User | None) -> Actor | None:
    message = _message_of(update)
    if message is not None and message.sender_chat is not None:
        chat = message.sender_chat
        name = chat.title or chat.full_name or (f"@{chat.username}" if chat.username else str(chat.id))
        return Actor(chat.id, name, None, is_chat=True)
    if user is None:
        return None
    return Actor(user.id, user.full_name, user.language_code)


def _message_of(update: Update) -> Message | None:
    for message in (update.message, update.edited_message, update.channel_post, update.edited_channel_post):
        if message is not None:
            return message
    return None


class Identify(BaseMiddleware):
    """Puts `actor` into every handler's data (None for updates nobody sent, such as a poll's closing)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        data["actor"] = actor_of(event, data.get("event_from_user"))
        return await handler(event, data)
