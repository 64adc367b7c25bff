"""Typed messages: a text turn with the chat model, the conversation as context."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from bot.assistant import Assistant
from bot.conversations import Conversations
from bot.quotas import Quotas
from handlers.context import conversation_key, speaker_name
from handlers.replies import answer_text


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(text_turn, F.text, ~F.text.startswith("/"))
    return router


async def text_turn(
    message: Message, bot: Bot, assistant: Assistant, conversations: Conversations, quotas: Quotas
) -> None:
    assert message.from_user is not None and message.text is not None
    key = conversation_key(message)
    speaker = speaker_name(message)
    async with quotas.charge(message.from_user.id, "chat") as use:
        async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id, message_thread_id=key.thread_id or None):
            reply = await assistant.answer_text(key, message.text, speaker)
            await answer_text(message, reply.text)
        use.tokens = reply.tokens
        await conversations.remember(key, message.text, reply.text, speaker)
