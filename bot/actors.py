"""Who a request counts as: the person who sent it, or the chat it was sent on behalf of.

A message sent "as a channel", or by an anonymous group admin, comes `from` one of Telegram's shared service
accounts, with the real sender in `sender_chat`. Counting such messages as that account would give every channel
and anonymous admin everywhere one shared quota, one /cancel and one ban; they count as their chat instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update, User


@dataclass(frozen=True, slots=True)
class Actor:
    """Whose quota pays, whose ban applies, whose request /cancel stops, whose settings are used."""

    id: int  # a user id, or (is_chat) the chat's negative id
    name: str
    language_code: str | None = None
    is_chat: bool = False


def actor_of(update: Update, user: User | None) -> Actor | None:
    """The actor of an update: the chat a message was sent on behalf of, else the user it came from."""
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
