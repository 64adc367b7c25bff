"""/draw makes a picture, /edit changes one (a photo's caption, a reply to a photo, or an album's caption)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.actors import Actor
from bot.config import Settings
from bot.errors import Refusal
from bot.gateway import Gateway, image_prompt_limit
from bot.i18n import _, __
from bot.images import editable
from bot.inflight import HeavyWork
from bot.quotas import Quotas
from bot.telegram_text import escape, shorten
from handlers.context import replied_message, working
from handlers.incoming_images import NOT_AN_IMAGE, fetch_pictures, has_image, images_in, is_other_file
from handlers.replies import answer_picture

DRAW_USAGE = Refusal(__("Tell me what to draw: /draw <description>, e.g. /draw a red fox in the snow"))
EDIT_USAGE = Refusal(
    __(
        "Tell me what to change: send a photo with the caption /edit <change>, or reply to a photo with "
        "/edit <change>, e.g. /edit make it a watercolor"
    )
)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(draw_picture, Command("draw"))
    router.message.register(edit_picture, Command("edit"))
    return router


def _prompt(command: CommandObject, usage: Refusal, settings: Settings) -> str:
    prompt = (command.args or "").strip()
    if not prompt:
        raise usage
    limit = image_prompt_limit(settings.IMAGE_MODEL)
    if len(prompt) > limit:
        raise Refusal(
            _("That description is {length} characters long; the image model takes at most {limit}.").format(
                length=len(prompt), limit=limit
            )
        )
    return prompt


async def draw_picture(
    message: Message,
    command: CommandObject,
    bot: Bot,
    actor: Actor,
    gateway: Gateway,
    quotas: Quotas,
    settings: Settings,
    heavy: HeavyWork,
) -> None:
    prompt = _prompt(command, DRAW_USAGE, settings)
    async with quotas.charge(actor.id, "draw"):
        async with working(ChatAction.UPLOAD_PHOTO, message, bot):
            async with heavy.hold(actor.id, _("drawing")):
                result = await gateway.draw(prompt)
            await answer_picture(message, result.picture, caption=escape(shorten(result.revised_prompt or prompt)))


async def edit_picture(
    message: Message,
    command: CommandObject,
    bot: Bot,
    actor: Actor,
    gateway: Gateway,
    quotas: Quotas,
    settings: Settings,
    heavy: HeavyWork,
    album: list[Message] | None = None,
) -> None:
    prompt = _prompt(command, EDIT_USAGE, settings)
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
    max_pixels = settings.MAX_IMAGE_PIXELS
    async with quotas.charge(actor.id, "edit"):
        async with working(ChatAction.UPLOAD_PHOTO, message, bot):
            async with heavy.hold(actor.id, _("photo edit")):
                fetched = await fetch_pictures(bot, images, max_pixels)
                pictures = [await editable(picture, max_pixels) for picture in fetched]
                result = await gateway.edit(pictures, prompt)
            await answer_picture(message, result.picture)
