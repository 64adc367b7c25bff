"""/memory lists what the bot remembers about you, numbered; /forget <n> or /forget all deletes."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from bot.memory import Memory
from bot.telegram.replies import answer_text
from bot.telegram.text import escape

FORGET_USAGE = Refusal(__("Usage: /forget <number> (see /memory) or /forget all"))
_NUMBER = re.compile(r"[1-9][0-9]{0,3}")


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_memory, Command("memory"))
    router.message.register(forget, Command("forget"))
    return router


async def show_memory(message: Message, actor: Actor, memory: Memory) -> None:
    facts = await memory.facts(actor.id)
    if not facts:
        await message.answer(
            _(
                "I don't remember anything about you yet. Ask me to remember something, e.g. “remember that I like tea”."
            )
        )
        return
    lines = [f"{number}. {fact}" for number, fact in enumerate(facts, start=1)]
    await answer_text(message, _("What I remember about you:") + "\n" + "\n".join(lines))


async def forget(message: Message, command: CommandObject, actor: Actor, memory: Memory) -> None:
    which = (command.args or "").strip().lower()
    if which == "all":
        count = await memory.forget_all(actor.id)
        await message.answer(_("Done: I forgot everything I remembered about you ({count}).").format(count=count))
        return
    if not _NUMBER.fullmatch(which):
        raise FORGET_USAGE
    fact = await memory.forget_number(actor.id, int(which))
    await message.answer(_("Forgotten: {fact}").format(fact=escape(fact)))
