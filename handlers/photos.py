"""Photos and image files without a command: the vision model answers the caption's question about them."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.types import Message

from bot.assistant import Assistant, default_question
from bot.config import Settings
from bot.core.actors import Actor
from bot.core.i18n import __
from bot.telegram.context import conversation_key, speaker_name
from bot.telegram.filters import AddressedToBot
from bot.telegram.incoming_images import NOT_AN_IMAGE, fetch_pictures, images_in
from bot.telegram.replies import answer_text
from bot.telegram.turns import TelegramTurns
from bot.turns import TurnRule

_IMAGE = F.photo | F.document.mime_type.startswith("image/")
_NO_COMMAND = ~F.caption.startswith("/")
VISION_TURN = TurnRule("vision", __("photo question"), chat_action=ChatAction.TYPING)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(look_at_pictures, _IMAGE, _NO_COMMAND, AddressedToBot())
    router.message.register(refuse_other_file, F.document, _NO_COMMAND, AddressedToBot())
    return router


async def look_at_pictures(
    message: Message,
    bot: Bot,
    actor: Actor,
    turns: TelegramTurns,
    assistant: Assistant,
    settings: Settings,
    question: str,
    album: list[Message] | None = None,
) -> None:
    images = images_in(album or [message], settings.MAX_IMAGE_PIXELS)
    key, speaker = conversation_key(message), speaker_name(message)
    # The quota and the one-request rule come before any download or decoding.
    async with turns.run(actor, VISION_TURN, message) as turn:
        pictures = await fetch_pictures(bot, images, settings.MAX_IMAGE_PIXELS)
        reply = await assistant.answer_photo(key, pictures, question or default_question(), speaker)
        turn.answering()
        await answer_text(message, reply.text)
        turn.tokens = reply.tokens


async def refuse_other_file(message: Message) -> None:
    raise NOT_AN_IMAGE
