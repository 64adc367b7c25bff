"""Typed messages (in groups, those that mention the bot or reply to it): a text turn with the chat model, or a
spoken one for people who asked in /settings for texts to be answered in voice too."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import Filter
from aiogram.types import Message

from bot.assistant import Assistant
from bot.config import Settings
from bot.core.actors import Actor
from bot.core.i18n import _, __
from bot.models import Models
from bot.preferences import Preferences
from bot.telegram.filters import AddressedToBot
from bot.telegram.live_answer import LiveAnswer
from bot.telegram.replies import answer_spoken, answer_text
from bot.telegram.tool_view import asked_with_tools, send_sources
from bot.telegram.turns import TelegramTurns
from bot.turns import TurnRule

# A text answer is not exclusive (the next question may come meanwhile), but /cancel stops it.
TEXT_TURN = TurnRule("chat", __("answer"), exclusive=False, chat_action=ChatAction.TYPING)
# A spoken answer runs the audio model, whatever asked for it: it is a voice use.
SPOKEN_TURN = TurnRule("voice", __("voice message"), chat_action=ChatAction.RECORD_VOICE)


class WantsSpokenAnswers(Filter):
    """The actor chose in /settings to hear their texts answered in voice too."""

    async def __call__(self, message: Message, actor: Actor, preferences: Preferences) -> bool:
        return (await preferences.of(actor.id)).text_reply == "voice"


def build_router() -> Router:
    router = Router(name=__name__)
    typed = (F.text, ~F.text.startswith("/"), AddressedToBot())
    router.message.register(say_what, *typed, _NothingAsked())
    router.message.register(spoken_text_turn, *typed, WantsSpokenAnswers())
    router.message.register(text_turn, *typed)
    return router


class _NothingAsked(Filter):
    """Just "@bot" in a group: nothing to answer yet."""

    async def __call__(self, message: Message, question: str) -> bool:
        return not question


async def say_what(message: Message) -> None:
    await message.reply(_("Yes? Ask me something, or send /help."))


async def spoken_text_turn(
    message: Message,
    actor: Actor,
    turns: TelegramTurns,
    assistant: Assistant,
    preferences: Preferences,
    question: str,
) -> None:
    asked = asked_with_tools(message, actor, question)
    async with turns.run(actor, SPOKEN_TURN, message) as turn:
        spoken = await assistant.answer_spoken(asked, (await preferences.of(actor.id)).voice)
        turn.answering()
        await answer_spoken(message, spoken, with_text=True)
        await send_sources(message, asked.belt.sources)
        turn.tokens = spoken.tokens


async def text_turn(
    message: Message,
    bot: Bot,
    actor: Actor,
    turns: TelegramTurns,
    assistant: Assistant,
    preferences: Preferences,
    models: Models,
    settings: Settings,
    question: str,
) -> None:
    asked = asked_with_tools(message, actor, question)
    model = models.chat_model_for((await preferences.of(actor.id)).chat_model)  # a pick made with /model
    async with turns.run(actor, TEXT_TURN, message) as turn:
        if not settings.STREAM_ANSWERS:
            reply = await assistant.answer_text(asked, model)
            turn.answering()
            await answer_text(message, reply.text)
        else:
            reply = assistant.stream_text(asked, model)
            async with LiveAnswer(message, bot) as live:
                async for text in reply:
                    live.update(text)
                turn.answering()
                await live.finish(reply.text)
        await send_sources(message, asked.belt.sources)
        turn.tokens = reply.tokens
