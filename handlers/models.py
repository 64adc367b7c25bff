"""/models and /setmodel (admins): which model serves each kind, and its list; /model: the chat model a person
talks to, picked on buttons."""

from __future__ import annotations

import hashlib

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.admin import Administration
from bot.config import MODEL_KINDS, split_models
from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from bot.models import KindReport, Models
from bot.preferences import Preferences
from bot.telegram.edits import edited
from bot.telegram.text import escape

SETMODEL_USAGE = Refusal(
    __(
        "Usage: /setmodel <kind> <model[,model…]> (kinds: chat, vision, audio, transcribe, image, tts, search, "
        "embedding), e.g. /setmodel audio gpt-audio,gpt-4o-audio-preview"
    )
)
STALE_CHOICE = __("This button no longer works. Send /model to choose again.")


class ModelPress(CallbackData, prefix="model"):
    """A model on /model's buttons: its place in the list on offer, and a check that it is still the same model
    (ids may hold ':' and run long, so they do not travel themselves)."""

    owner: int
    index: int
    check: str


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_models, Command("models"))
    router.message.register(set_models, Command("setmodel"))
    router.message.register(choose_model, Command("model"))
    router.callback_query.register(press_model, ModelPress.filter())
    return router


async def show_models(message: Message, actor: Actor, admin: Administration, models: Models) -> None:
    admin.admin_id(actor)
    read = await models.refresh()
    await message.answer(format_models(models.report(), read))


async def set_models(
    message: Message, command: CommandObject, actor: Actor, admin: Administration, models: Models
) -> None:
    admin_id = admin.admin_id(actor)  # non-admins learn nothing, not even whether their arguments were right
    words = (command.args or "").split()
    if len(words) != 2 or words[0].lower() not in MODEL_KINDS or not split_models(words[1]):
        raise SETMODEL_USAGE
    kind, chosen = words[0].lower(), split_models(words[1])
    await admin.set_models(admin_id, kind, chosen)
    await message.answer(
        _("✅ {kind} now uses <code>{model}</code> (its list: {models}).").format(
            kind=kind, model=escape(models.current(kind)), models=escape(", ".join(chosen))
        )
    )


async def choose_model(message: Message, actor: Actor, models: Models, preferences: Preferences) -> None:
    mine = models.chat_model_for((await preferences.of(actor.id)).chat_model) or models.current("chat")
    await message.answer(
        _("Which model should answer your messages? Now: <code>{model}</code>").format(model=escape(mine)),
        reply_markup=model_keyboard(models.chat_choices(), mine, actor.id),
    )


async def press_model(
    query: CallbackQuery, callback_data: ModelPress, models: Models, preferences: Preferences
) -> None:
    """A person's own choice only (a menu shows whose it is); the first model on offer means the default."""
    choices = models.chat_choices()
    index, owner = callback_data.index, callback_data.owner
    if (
        not isinstance(query.message, Message)
        or owner != query.from_user.id
        or not 0 <= index < len(choices)
        or _check(choices[index]) != callback_data.check
    ):
        await query.answer(str(STALE_CHOICE), show_alert=True)
        return
    chosen = choices[index]
    await preferences.choose_chat_model(owner, None if index == 0 else chosen, choices)
    await query.answer(_("Saved: {model}").format(model=chosen))
    await edited(
        query.message.edit_text(
            _("Which model should answer your messages? Now: <code>{model}</code>").format(model=escape(chosen)),
            reply_markup=model_keyboard(choices, chosen, owner),
        )
    )


def model_keyboard(choices: list[str], current: str, owner: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, model in enumerate(choices):
        label = f"✓ {model}" if model == current else model
        builder.button(text=label, callback_data=ModelPress(owner=owner, index=index, check=_check(model)))
    builder.adjust(1)
    return builder.as_markup()


def _check(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:8]


def format_models(reports: list[KindReport], catalog_read: bool) -> str:
    heading = _("<b>Models</b> (in use, then the kind's list)")
    if not catalog_read:
        heading += "\n" + _("⚠️ The gateway's catalog could not be read: each kind uses the first of its list.")
    lines = [heading]
    for report in reports:
        lines.append(f"\n<b>{report.kind}</b>: <code>{escape(report.in_use)}</code>")
        entries = []
        for model in report.models:
            mark = "" if model.listed is None else (" ✓" if model.listed else " ✗ " + _("not listed"))
            shuts = " ⏳ " + _("shuts down {day}").format(day=model.shutdown.isoformat()) if model.shutdown else ""
            entries.append(f"{escape(model.id)}{mark}{shuts}")
        lines.append("  " + " · ".join(entries))
    return "\n".join(lines)
