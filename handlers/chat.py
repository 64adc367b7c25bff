"""Typed messages (in groups, those that mention the bot or reply to it): a text turn with the chat model."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from bot.assistant import Assistant
from bot.quotas import Quotas
from handlers.context import conversation_key, speaker_name
from handlers.filters import AddressedToBot
from handlers.replies import answer_text


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(text_turn, F.text, ~F.text.startswith("/"), AddressedToBot())
    return router


async def text_turn(
    message: Message,
    bot: Bot,
    assistant: Assistant,
    quotas: Quotas,
    question: str,
) -> None:
    assert message.from_user is not None
    if not question:  # just "@bot" in a group
        await message.reply("Yes? Ask me something, or send /help.")
        return
    key = conversation_key(message)
    speaker = speaker_name(message)
    async with quotas.charge(message.from_user.id, "chat") as use:
        async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id, message_thread_id=key.thread_id or None):
            reply = await assistant.answer_text(key, question, speaker)
            await answer_text(message, reply.text)
        use.tokens = reply.tokens
