"""What a message means to the services: which conversation it belongs to and who is speaking."""

from __future__ import annotations

from aiogram.enums import ChatType
from aiogram.types import Message

from bot.conversations import ConversationKey


def conversation_key(message: Message) -> ConversationKey:
    """The chat, and the forum topic when the message was written in one."""
    thread = message.message_thread_id if message.is_topic_message else None
    return ConversationKey(chat_id=message.chat.id, thread_id=thread or 0)


def speaker_name(message: Message) -> str:
    """In groups the model is told who said what; in a private chat there is only one person."""
    if message.chat.type == ChatType.PRIVATE or message.from_user is None:
        return ""
    return message.from_user.full_name
