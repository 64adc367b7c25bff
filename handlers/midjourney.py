"""/imagine, /blend, /seed and the buttons under Midjourney pictures."""

from __future__ import annotations

from functools import partial

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.config import Settings
from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from bot.midjourney.jobs import SEED_USAGE, MidjourneyJobs, Origin
from bot.midjourney.keyboard import MjPress
from bot.telegram.context import conversation_key, replied_message
from bot.telegram.incoming_images import fetch_pictures, images_in
from bot.telegram.text import escape
from bot.telegram.turns import TelegramTurns
from bot.turns import TurnRule

IMAGINE_USAGE = Refusal(
    __("Tell me what to imagine: /imagine <prompt>, e.g. /imagine a lighthouse at dawn --ar 16:9")
)
BLEND_USAGE = Refusal(
    __("Send 2 to 5 photos as one album with the caption /blend (add portrait or landscape for that shape).")
)
# Midjourney's own limit is about 6,000 characters; Telegram's 4,096 per message comes first anyway.
_PROMPT_LIMIT = 4000
_BLEND_SHAPES = {"portrait": "PORTRAIT", "landscape": "LANDSCAPE", "square": "SQUARE"}
# Every job is paid from the imagine quota, when the gateway accepts it (the presser pays for a button's).
JOB_TURN = TurnRule("imagine", __("Midjourney request"))
# A seed costs nothing, but it is a gateway call like any other: one request at a time, which /cancel stops.
SEED_TURN = TurnRule(None, __("seed lookup"), name="seed")


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(imagine, Command("imagine"))
    router.message.register(blend, Command("blend"))
    router.message.register(seed, Command("seed"))
    router.callback_query.register(press_button, MjPress.filter())
    return router


def _origin(message: Message, actor: Actor) -> Origin:
    return Origin(
        user_id=actor.id,
        chat_id=message.chat.id,
        thread_id=conversation_key(message).thread_id,
        message_id=message.message_id,
    )


async def imagine(
    message: Message,
    command: CommandObject,
    bot: Bot,
    actor: Actor,
    turns: TelegramTurns,
    jobs: MidjourneyJobs,
    settings: Settings,
) -> None:
    prompt = (command.args or "").strip()
    if not prompt:
        raise IMAGINE_USAGE
    if len(prompt) > _PROMPT_LIMIT:
        raise Refusal(
            _("That prompt is {length} characters long; Midjourney takes at most {limit}.").format(
                length=len(prompt), limit=_PROMPT_LIMIT
            )
        )
    # A photo captioned /imagine is a reference image for the prompt; it is fetched once the job may start.
    images = images_in([message], settings.MAX_IMAGE_PIXELS)
    references = partial(fetch_pictures, bot, images, settings.MAX_IMAGE_PIXELS) if images else None
    async with turns.run(actor, JOB_TURN) as turn:
        await jobs.imagine(turn, _origin(message, actor), prompt, references)


async def blend(
    message: Message,
    command: CommandObject,
    bot: Bot,
    actor: Actor,
    turns: TelegramTurns,
    jobs: MidjourneyJobs,
    settings: Settings,
    album: list[Message] | None = None,
) -> None:
    images = images_in(album or [message], settings.MAX_IMAGE_PIXELS)
    if not 2 <= len(images) <= 5:
        raise BLEND_USAGE
    shape = (command.args or "").strip().lower()
    dimensions = next((value for word, value in _BLEND_SHAPES.items() if word in shape), "SQUARE")
    pictures = partial(fetch_pictures, bot, images, settings.MAX_IMAGE_PIXELS)
    async with turns.run(actor, JOB_TURN) as turn:
        await jobs.blend(turn, _origin(message, actor), pictures, dimensions)


async def seed(message: Message, actor: Actor, turns: TelegramTurns, jobs: MidjourneyJobs) -> None:
    replied = replied_message(message)
    if replied is None:
        raise SEED_USAGE
    async with turns.run(actor, SEED_TURN) as turn:
        value = await jobs.seed(message.chat.id, replied.message_id)
        turn.answering()
        await message.answer(_("🌱 Seed: <code>{seed}</code>").format(seed=escape(value)))


async def press_button(
    query: CallbackQuery, callback_data: MjPress, actor: Actor, turns: TelegramTurns, jobs: MidjourneyJobs
) -> None:
    """Refusals (stale, already running, quota) are the press's answer; otherwise it is answered at once and
    the job submitted. The presser pays; a failure after the answer is told in the chat."""
    picture = query.message
    if not isinstance(picture, Message):
        raise Refusal(__("This picture is too old to use its buttons."))
    origin = Origin(
        user_id=query.from_user.id,
        chat_id=picture.chat.id,
        thread_id=conversation_key(picture).thread_id,
        message_id=picture.message_id,
    )

    async def acknowledge(label: str) -> None:
        await query.answer(_("{label}: on it…").format(label=label))

    await jobs.press(callback_data.key, origin, lambda: turns.run(actor, JOB_TURN), acknowledge)
