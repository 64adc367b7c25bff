"""What the model may do in a text or voice turn besides answering: draw, start a Midjourney picture, search the
web, remember a fact, forget one. Each tool is its JSON schema, the quota kind it is charged to (only when it
succeeds, to the person speaking), the service call it makes, and what is shown while it runs.

A tool runs as a turn of its own (bot/turns.py) inside the person's text or voice turn: over its limit it is not
run, and the person sees the usual refusal while the model is told, as the call's result, in the same turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from babel.support import LazyProxy

from bot.clients.gateway_results import Citation, ToolCall
from bot.core.errors import UserFacingError
from bot.core.i18n import __
from bot.drawing import Drawing
from bot.media.images import Picture
from bot.memory import Memory
from bot.midjourney.jobs import MidjourneyJobs, Origin
from bot.search import Search
from bot.turns import Turn, TurnRule, Turns

log = logging.getLogger(__name__)

# Rounds of tool calls in one turn; after them the model must answer.
MAX_TOOL_ROUNDS = 3


class ToolView(Protocol):
    """What a person sees of the tools run in their turn (the Telegram edge implements it)."""

    async def show_status(self, text: str) -> object: ...

    async def clear_status(self, handle: object) -> None: ...

    async def send_picture(self, picture: Picture, caption: str) -> None: ...

    async def tell(self, text: str) -> None: ...


@dataclass
class ToolBelt:
    """The tools of one turn: who pays, where pictures go, and what the turn's answer should link to."""

    actor_id: int
    origin: Origin
    view: ToolView
    sources: list[Citation] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)  # the tools that succeeded, by name


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    argument: str  # the one string argument each tool takes
    argument_description: str
    rule: TurnRule  # its quota kind (None: free) and what /cancel calls it
    status: LazyProxy | None  # shown while it runs, formatted with the argument
    run: Callable[[ToolBelt, str, Turn], Awaitable[str]]

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": {self.argument: {"type": "string", "description": self.argument_description}},
                    "required": [self.argument],
                    "additionalProperties": False,
                },
            },
        }


class Tools:
    def __init__(
        self, drawing: Drawing, jobs: MidjourneyJobs, search: Search, memory: Memory, turns: Turns
    ) -> None:
        self._drawing = drawing
        self._jobs = jobs
        self._search = search
        self._memory = memory
        self._turns = turns
        self._tools = {tool.name: tool for tool in self._registry()}

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self._tools.values()]

    async def run(self, belt: ToolBelt, call: ToolCall) -> str:
        """Run one call; what the model is told. A refusal or failure is said to the person in words too."""
        tool = self._tools.get(call.name)
        argument = _argument(call.arguments, tool.argument) if tool else None
        if tool is None or not argument:
            log.warning("the model called %s with arguments it may not use", call.name[:40])
            return "Error: no such tool, or its argument is missing. Answer without it."
        try:
            async with self._turns.run(belt.actor_id, tool.rule) as turn:  # over its limit, nothing below runs
                status = await belt.view.show_status(str(tool.status).format(argument)) if tool.status else None
                try:
                    result = await tool.run(belt, argument, turn)
                finally:
                    if status is not None:
                        await belt.view.clear_status(status)
        except UserFacingError as error:
            said = str(error.user_message)
            await belt.view.tell(said)
            return f"Not done: {said} (the user has been told)."
        belt.ran.append(tool.name)
        return result

    def _registry(self) -> Sequence[Tool]:
        return (
            Tool(
                "draw_picture",
                "Draw a picture with the image model and send it to the user. Use it when they ask you to draw, "
                "paint, sketch or make a picture.",
                "prompt",
                "What to draw, in detail, in English.",
                TurnRule("draw", __("drawing"), exclusive=False),
                __("🎨 drawing: {}"),
                self._draw,
            ),
            Tool(
                "imagine_picture",
                "Start a Midjourney picture (it arrives by itself after a minute or two, with buttons). Use it "
                "when they ask for Midjourney, or to imagine an artwork.",
                "prompt",
                "A Midjourney prompt, in English.",
                TurnRule("imagine", __("Midjourney request"), exclusive=False),
                None,  # its own status message follows it
                self._imagine,
            ),
            Tool(
                "search_web",
                "Search the web for current information: news, weather, prices, facts you are not sure of.",
                "query",
                "The search query.",
                TurnRule("search", __("web search"), exclusive=False),
                __("🔎 searching: {}"),
                self._search_web,
            ),
            Tool(
                "remember_fact",
                "Remember a fact about the user for later conversations, when they ask you to remember "
                "something (their name, family, likes, plans).",
                "fact",
                "The fact, as a short sentence about the user.",
                TurnRule(None, __("memory"), exclusive=False, name="remember"),
                None,
                self._remember,
            ),
            Tool(
                "forget_fact",
                "Forget a fact you remembered about the user, when they ask you to forget something.",
                "fact",
                "The fact to forget, as the user described it.",
                TurnRule(None, __("memory"), exclusive=False, name="forget"),
                None,
                self._forget,
            ),
        )

    async def _draw(self, belt: ToolBelt, prompt: str, turn: Turn) -> str:
        self._drawing.check_prompt(prompt)
        result = await self._drawing.draw(prompt)
        await belt.view.send_picture(result.picture, result.revised_prompt or prompt)
        return "The picture was drawn and sent to the user."

    async def _imagine(self, belt: ToolBelt, prompt: str, turn: Turn) -> str:
        await self._jobs.imagine(turn, belt.origin, prompt)
        return "Midjourney started the picture; it will arrive in the chat by itself in a minute or two."

    async def _search_web(self, belt: ToolBelt, query: str, turn: Turn) -> str:
        answer = await self._search.search(query)
        turn.tokens = answer.tokens
        belt.sources.extend(source for source in answer.citations if source not in belt.sources)
        listed = "\n".join(f"- {source.title}: {source.url}" for source in answer.citations)
        return f"{answer.text}\n\nSources (they are shown to the user as links after your answer):\n{listed}"

    async def _remember(self, belt: ToolBelt, fact: str, turn: Turn) -> str:
        count = await self._memory.remember(belt.actor_id, fact)
        return f"Remembered. The user now has {count} facts remembered (they can see them with /memory)."

    async def _forget(self, belt: ToolBelt, fact: str, turn: Turn) -> str:
        forgotten = await self._memory.forget_about(belt.actor_id, fact)
        if forgotten is None:
            return "No remembered fact matches that; nothing was forgotten (the user can see them with /memory)."
        return f"Forgotten: {forgotten}"


def _argument(arguments: str, name: str) -> str | None:
    """The one string argument from the model's JSON (checked here: the gateway drops `strict`)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return None
    found = value.get(name) if isinstance(value, dict) else None
    return found.strip()[:4000] if isinstance(found, str) and found.strip() else None
