"""/draw makes a picture, /edit changes one (a photo's caption, a reply to a photo, or an album's caption)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.config import Settings
from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import __
from bot.drawing import Drawing
from bot.telegram.context import replied_message
from bot.telegram.incoming_images import NOT_AN_IMAGE, fetch_pictures, has_image, images_in, is_other_file
from bot.telegram.replies import answer_picture
from bot.telegram.text import escape, shorten
from bot.telegram.turns import TelegramTurns
from bot.turns import TurnRule

DRAW_USAGE = Refusal(__("Tell me what to draw: /draw <description>, e.g. /draw a red fox in the snow"))
EDIT_USAGE = Refusal(
    __(
        "Tell me what to change: send a photo with the caption /edit <change>, or reply to a photo with "
        "/edit <change>, e.g. /edit make it a watercolor"
    )
)
DRAW_TURN = TurnRule("draw", __("drawing"), chat_action=ChatAction.UPLOAD_PHOTO)
EDIT_TURN = TurnRule("edit", __("photo edit"), chat_action=ChatAction.UPLOAD_PHOTO)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(draw_picture, Command("draw"))
    router.message.register(edit_picture, Command("edit"))
    return router


def _prompt(command: CommandObject, usage: Refusal, drawing: Drawing) -> str:
    prompt = (command.args or "").strip()
    if not prompt:
        raise usage
    drawing.check_prompt(prompt)
    return prompt


async def draw_picture(
    message: Message, command: CommandObject, actor: Actor, turns: TelegramTurns, drawing: Drawing
) -> None:
    prompt = _prompt(command, DRAW_USAGE, drawing)
    async with turns.run(actor, DRAW_TURN, message) as turn:
        result = await drawing.draw(prompt)
        turn.answering()
        await answer_picture(message, result.picture, caption=escape(shorten(result.revised_prompt or prompt)))


async def edit_picture(
    message: Message,
    command: CommandObject,
    bot: Bot,
    actor: Actor,
    turns: TelegramTurns,
    drawing: Drawing,
    settings: Settings,
    album: list[Message] | None = None,
) -> None:
    prompt = _prompt(command, EDIT_USAGE, drawing)
    sources = album or [message]
    replied = replied_message(message)
    if not any(has_image(source) for source in sources) and replied is not None and has_image(replied):
        sources = [replied]
    images = images_in(sources, settings.MAX_IMAGE_PIXELS)
    if not images:
        other_file = any(is_other_file(source) for source in sources) or (
            replied is not None and is_other_file(replied)
        )
        raise NOT_AN_IMAGE if other_file else EDIT_USAGE
    async with turns.run(actor, EDIT_TURN, message) as turn:
        pictures = await fetch_pictures(bot, images, settings.MAX_IMAGE_PIXELS)
        result = await drawing.edit(pictures, prompt)
        turn.answering()
        await answer_picture(message, result.picture)
