"""Turns (bot/turns.py) as handlers run them: the actor's turn, with the chat action its rule names ("recording
voice…") shown in the message's chat and topic while it works.

    async with turns.run(actor, VOICE_TURN, message) as turn:
        ...
        turn.tokens = reply.tokens

A handler checks its arguments before it starts the turn: a usage answer is no turn, costs nothing and takes no
one's place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Bot
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from bot.core.actors import Actor
from bot.telegram.context import conversation_key
from bot.turns import Turn, TurnRule, Turns


class TelegramTurns:
    def __init__(self, turns: Turns, bot: Bot) -> None:
        self._turns = turns
        self._bot = bot

    @asynccontextmanager
    async def run(self, actor: Actor, rule: TurnRule, shown_in: Message | None = None) -> AsyncIterator[Turn]:
        async with self._turns.run(actor.id, rule) as turn:
            if rule.chat_action is None or shown_in is None:
                yield turn
                return
            async with ChatActionSender(
                bot=self._bot,
                chat_id=shown_in.chat.id,
                action=rule.chat_action,
                message_thread_id=conversation_key(shown_in).thread_id or None,
            ):
                yield turn
