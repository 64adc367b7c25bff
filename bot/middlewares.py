"""Dispatcher middlewares: remember who writes to the bot, and turn banned actors away before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import TelegramObject, Update, User

from bot.actors import Actor
from bot.admin import Administration
from bot.i18n import UserLanguage, __
from bot.lru import LruCache
from bot.quotas import utc_today
from storage.users import UserRepository

BANNED_NOTICE = __("You can't use this bot.")


# People (and chats) whose latest profile is remembered in memory, to skip writing it again on every message.
_SEEN_CAPACITY = 10_000


class KnownUsers(BaseMiddleware):
    """Keeps each actor's name and language in the database (a chat's title, for messages sent on its behalf), and
    when they were last seen (to the day), writing only when something changed."""

    def __init__(self, users: UserRepository) -> None:
        self._users = users
        self._seen: LruCache[int, tuple[str, str, str]] = LruCache(_SEEN_CAPACITY)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        actor: Actor | None = data.get("actor")
        user: User | None = data.get("event_from_user")
        if actor is not None and (actor.is_chat or (user is not None and not user.is_bot)):
            profile = (actor.name, actor.language_code or "", utc_today())
            if self._seen.get(actor.id) != profile:
                await self._users.remember(actor.id, profile[0], profile[1])
                self._seen.put(actor.id, profile)
        return await handler(event, data)


class BanGate(BaseMiddleware):
    """A banned actor gets no service anywhere: one short notice in their private chat, then silence
    (in groups nothing at all, so the bot is not made to talk where it was not asked); buttons they press
    are answered with the notice, since every press must be answered. A banned chat's messages sent on its
    behalf are turned away; its members writing as themselves are not."""

    def __init__(self, admin: Administration, language: UserLanguage) -> None:
        self._admin = admin
        self._language = language  # updates come before aiogram's per-event language is set

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        actor: Actor | None = data.get("actor")
        if actor is None or not self._admin.is_banned(actor.id):
            return await handler(event, data)
        assert isinstance(event, Update)
        with self._language.i18n.use_locale(await self._language.get_locale(event, data)):
            if event.callback_query is not None:
                await event.callback_query.answer(str(BANNED_NOTICE), show_alert=True)
            elif (
                event.message is not None
                and event.message.chat.type == ChatType.PRIVATE
                and await self._admin.claim_ban_notice(actor.id)
            ):
                await event.message.answer(str(BANNED_NOTICE))
        return None
