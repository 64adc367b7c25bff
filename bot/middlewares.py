"""Dispatcher middlewares: remember who writes to the bot, and turn banned users away before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import TelegramObject, Update, User

from bot.admin import Administration
from bot.i18n import UserLanguage, __
from bot.quotas import utc_today
from storage.users import UserRepository

BANNED_NOTICE = __("You can't use this bot.")


class KnownUsers(BaseMiddleware):
    """Keeps each user's name and language in the database, and when they were last seen (to the day),
    writing only when something changed."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users
        self._seen: dict[int, tuple[str, str, str]] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            profile = (user.full_name, user.language_code or "", utc_today())
            if self._seen.get(user.id) != profile:
                await self._users.remember(user.id, profile[0], profile[1])
                self._seen[user.id] = profile
        return await handler(event, data)


class BanGate(BaseMiddleware):
    """A banned user gets no service anywhere: one short notice in their private chat, then silence
    (in groups nothing at all, so the bot is not made to talk where it was not asked); buttons they press
    are answered with the notice, since every press must be answered."""

    def __init__(self, admin: Administration, language: UserLanguage) -> None:
        self._admin = admin
        self._language = language  # updates come before aiogram's per-event language is set

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or not self._admin.is_banned(user.id):
            return await handler(event, data)
        assert isinstance(event, Update)
        with self._language.i18n.use_locale(await self._language.get_locale(event, data)):
            if event.callback_query is not None:
                await event.callback_query.answer(str(BANNED_NOTICE), show_alert=True)
            elif (
                event.message is not None
                and event.message.chat.type == ChatType.PRIVATE
                and await self._admin.claim_ban_notice(user.id)
            ):
                await event.message.answer(str(BANNED_NOTICE))
        return None
