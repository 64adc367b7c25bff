"""Photos and image files without a command: the vision model answers the caption's question about them."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.types import Message

from bot.actors import Actor
from bot.assistant import Assistant, default_question
from bot.config import Settings
from bot.i18n import _
from bot.inflight import HeavyWork
from bot.quotas import Quotas
from handlers.context import conversation_key, speaker_name, working
from handlers.filters import AddressedToBot
from handlers.incoming_images import NOT_AN_IMAGE, fetch_pictures, images_in
from handlers.replies import answer_text

_IMAGE = F.photo | F.document.mime_type.startswith("image/")
_NO_COMMAND = ~F.caption.startswith("/")


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(look_at_pictures, _IMAGE, _NO_COMMAND, AddressedToBot())
    router.message.register(refuse_other_file, F.document, _NO_COMMAND, AddressedToBot())
    return router


async def look_at_pictures(
    message: Message,
    bot: Bot,
    actor: Actor,
    assistant: Assistant,
    quotas: Quotas,
    heavy: HeavyWork,
    settings: Settings,
    question: str,
    album: list[Message] | None = None,
) -> None:
    images = images_in(album or [message], settings.MAX_IMAGE_PIXELS)
    question = question or default_question()
    key = conversation_key(message)
    speaker = speaker_name(message)
    # The quota and the one-request rule come before any download or decoding: nobody makes the bot work for free.
    async with quotas.charge(actor.id, "vision") as use:
        async with working(ChatAction.TYPING, message, bot):
            async with heavy.hold(actor.id, _("photo question")):
                pictures = await fetch_pictures(bot, images, settings.MAX_IMAGE_PIXELS)
                reply = await assistant.answer_photo(key, pictures, question, speaker)
            await answer_text(message, reply.text)
        use.tokens = reply.tokens


async def refuse_other_file(message: Message) -> None:
    raise NOT_AN_IMAGE
