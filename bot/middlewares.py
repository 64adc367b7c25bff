"""Dispatcher middlewares: remember who writes to the bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from storage.users import UserRepository


class KnownUsers(BaseMiddleware):
    """Keeps each user's name and language in the database, writing only when they change."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users
        self._seen: dict[int, tuple[str, str]] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            profile = (user.full_name, user.language_code or "")
            if self._seen.get(user.id) != profile:
                await self._users.remember(user.id, *profile)
                self._seen[user.id] = profile
        return await handler(event, data)
