"""Voice notes, audio files and round video notes: a spoken turn answered with a voice message (or in text, for
people who chose that in /settings)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatAction
from aiogram.types import Message

from bot.assistant import Assistant
from bot.core.actors import Actor
from bot.core.i18n import __
from bot.preferences import Preferences
from bot.telegram.filters import AddressedToBot
from bot.telegram.recordings import RecordingIntake
from bot.telegram.replies import answer_spoken, answer_text
from bot.telegram.tool_view import asked_with_tools, send_sources
from bot.telegram.turns import TelegramTurns
from bot.turns import TurnRule

VOICE_TURN = TurnRule("voice", __("voice message"), chat_action=ChatAction.RECORD_VOICE)


def build_router() -> Router:
    router = Router(name=__name__)
    # In a group a voice note cannot mention anyone: only a reply to the bot is meant for it.
    router.message.register(voice_turn, F.voice | F.audio | F.video_note, AddressedToBot(replies_only=True))
    return router


async def voice_turn(
    message: Message,
    actor: Actor,
    turns: TelegramTurns,
    recordings: RecordingIntake,
    assistant: Assistant,
    preferences: Preferences,
) -> None:
    incoming = recordings.accept(message)
    mine = await preferences.of(actor.id)
    async with turns.run(actor, VOICE_TURN, message) as turn:
        recording = await recordings.fetch(incoming)
        asked = asked_with_tools(message, actor, await assistant.hear(recording))
        if mine.voice_reply == "text":
            written = await assistant.answer_text(asked)
            turn.answering()
            await answer_text(message, written.text)
            turn.tokens = written.tokens
        else:
            spoken = await assistant.answer_spoken(asked, mine.voice)
            turn.answering()
            await answer_spoken(message, spoken, with_text=mine.voice_reply == "both")
            turn.tokens = spoken.tokens
        await send_sources(message, asked.belt.sources)
