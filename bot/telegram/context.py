"""What a message means to the services: which conversation it belongs to, what it replies to, who is speaking."""

from __future__ import annotations

from aiogram.enums import ChatType
from aiogram.types import Message

from bot.conversations import ConversationKey


def conversation_key(message: Message) -> ConversationKey:
    """The chat, and the forum topic when the message was written in one."""
    thread = message.message_thread_id if message.is_topic_message else None
    return ConversationKey(chat_id=message.chat.id, thread_id=thread or 0)


def replied_message(message: Message) -> Message | None:
    """The message this one answers, when it really is a reply. In a forum topic every message that replies to
    nothing comes as a reply to the topic's opening service message, which is never what anyone means."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return None
    return replied


def speaker_name(message: Message) -> str:
    """In groups the model is told who said what (a channel or an anonymous admin by the chat's title); in a
    private chat there is only one person."""
    if message.chat.type == ChatType.PRIVATE:
        return ""
    if message.sender_chat is not None:
        return message.sender_chat.title or message.sender_chat.full_name
    return message.from_user.full_name if message.from_user is not None else ""
