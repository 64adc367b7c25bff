"""/search <query>: a web search answered with its sources as links."""

from __future__ import annotations

from aiogram import Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import __
from bot.search import Search
from bot.telegram.replies import answer_text
from bot.telegram.tool_view import send_sources
from bot.telegram.turns import TelegramTurns
from bot.turns import TurnRule

SEARCH_USAGE = Refusal(__("Tell me what to look up: /search <query>, e.g. /search weather in Beijing tomorrow"))
# The gateway bills searches per call: each is a use of the search quota.
SEARCH_TURN = TurnRule("search", __("web search"), chat_action=ChatAction.TYPING)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(search, Command("search"))
    return router


async def search(
    message: Message, command: CommandObject, actor: Actor, turns: TelegramTurns, searcher: Search
) -> None:
    query = (command.args or "").strip()
    if not query:
        raise SEARCH_USAGE
    searcher.check_query(query)
    async with turns.run(actor, SEARCH_TURN, message) as turn:
        found = await searcher.search(query)
        turn.answering()
        await answer_text(message, found.text)
        await send_sources(message, found.citations)
        turn.tokens = found.tokens
