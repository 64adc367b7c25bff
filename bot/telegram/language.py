"""The language each update is answered in: the actor's own choice (/lang, /settings), else their Telegram
language; set for everything the update does, the model's instructions included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.core.actors import Actor
from bot.core.i18n import ENGLISH, language_of, use_language
from bot.preferences import Preferences


class ActorLanguage(BaseMiddleware):
    def __init__(self, preferences: Preferences) -> None:
        self._preferences = preferences

    async def language(self, actor: Actor | None) -> str:
        if actor is None:
            return ENGLISH
        return await self._preferences.chosen_language(actor.id) or language_of(actor.language_code)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        with use_language(await self.language(data.get("actor"))):
            return await handler(event, data)
