"""Typed messages (in groups, those that mention the bot or reply to it): a text turn with the chat model."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from bot.assistant import Assistant
from bot.config import Settings
from bot.gateway import StreamedReply
from bot.i18n import _
from bot.preferences import Preferences
from bot.quotas import Quotas
from handlers.context import conversation_key, speaker_name
from handlers.filters import AddressedToBot
from handlers.live_answer import LiveAnswer
from handlers.replies import answer_spoken, answer_text


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(text_turn, F.text, ~F.text.startswith("/"), AddressedToBot())
    return router


async def text_turn(
    message: Message,
    bot: Bot,
    assistant: Assistant,
    quotas: Quotas,
    preferences: Preferences,
    settings: Settings,
    question: str,
) -> None:
    assert message.from_user is not None
    if not question:  # just "@bot" in a group
        await message.reply(_("Yes? Ask me something, or send /help."))
        return
    key = conversation_key(message)
    speaker = speaker_name(message)
    mine = await preferences.of(message.from_user.id)
    async with quotas.charge(message.from_user.id, "chat") as use:
        if mine.text_reply == "voice":
            async with ChatActionSender.record_voice(
                bot=bot, chat_id=message.chat.id, message_thread_id=key.thread_id or None
            ):
                spoken = await assistant.answer_spoken(key, question, speaker, mine.voice)
                await answer_spoken(message, spoken, with_text=True)
            use.tokens = spoken.tokens
        elif settings.STREAM_ANSWERS:
            written = StreamedReply()
            async with ChatActionSender.typing(
                bot=bot, chat_id=message.chat.id, message_thread_id=key.thread_id or None
            ):
                async with LiveAnswer(message, bot) as live:
                    async for text in assistant.stream_text(key, question, speaker, written):
                        live.update(text)
                    await live.finish(written.text)
            use.tokens = written.tokens
        else:
            async with ChatActionSender.typing(
                bot=bot, chat_id=message.chat.id, message_thread_id=key.thread_id or None
            ):
                reply = await assistant.answer_text(key, question, speaker)
                await answer_text(message, reply.text)
            use.tokens = reply.tokens
