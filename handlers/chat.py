"""Typed messages (in groups, those that mention the bot or reply to it): a text turn with the chat model."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.types import Message

from bot.actors import Actor
from bot.assistant import Assistant
from bot.config import Settings
from bot.gateway import StreamedReply
from bot.i18n import _
from bot.inflight import HeavyWork
from bot.preferences import Preferences
from bot.quotas import Quotas
from handlers.context import conversation_key, speaker_name, working
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
    actor: Actor,
    assistant: Assistant,
    quotas: Quotas,
    preferences: Preferences,
    settings: Settings,
    heavy: HeavyWork,
    question: str,
) -> None:
    if not question:  # just "@bot" in a group
        await message.reply(_("Yes? Ask me something, or send /help."))
        return
    key = conversation_key(message)
    speaker = speaker_name(message)
    mine = await preferences.of(actor.id)
    if mine.text_reply == "voice":
        # A spoken answer runs the audio model, whatever asked for it: it is a voice use.
        async with quotas.charge(actor.id, "voice") as use:
            async with working(ChatAction.RECORD_VOICE, message, bot):
                async with heavy.hold(actor.id, _("voice message")):
                    spoken = await assistant.answer_spoken(key, question, speaker, mine.voice)
                await answer_spoken(message, spoken, with_text=True)
            use.tokens = spoken.tokens
        return
    async with quotas.charge(actor.id, "chat") as use:
        async with working(ChatAction.TYPING, message, bot):
            if settings.STREAM_ANSWERS:
                written = StreamedReply()
                async with LiveAnswer(message, bot) as live:
                    # /cancel stops a text answer too; it is not exclusive: the next question may come meanwhile.
                    async with heavy.hold(actor.id, _("answer"), exclusive=False):
                        async for text in assistant.stream_text(key, question, speaker, written):
                            live.update(text)
                    await live.finish(written.text)
                use.tokens = written.tokens
            else:
                async with heavy.hold(actor.id, _("answer"), exclusive=False):
                    reply = await assistant.answer_text(key, question, speaker)
                await answer_text(message, reply.text)
                use.tokens = reply.tokens
