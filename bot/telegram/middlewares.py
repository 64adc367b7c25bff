"""Dispatcher middlewares: every update's task kept for a shutdown to wait for, who writes to the bot remembered,
and banned actors turned away before any handler runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import TelegramObject, Update, User

from bot.admin import Administration
from bot.core.actors import Actor
from bot.core.i18n import __
from bot.core.lru import LruCache
from bot.quotas import utc_today
from storage.users import UserRepository

log = logging.getLogger(__name__)

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

    def __init__(self, admin: Administration) -> None:
        self._admin = admin

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
        if event.callback_query is not None:
            await event.callback_query.answer(str(BANNED_NOTICE), show_alert=True)
        elif (
            event.message is not None
            and event.message.chat.type == ChatType.PRIVATE
            and await self._admin.claim_ban_notice(actor.id)
        ):
            await event.message.answer(str(BANNED_NOTICE))
        return None


class RunningUpdates(BaseMiddleware):
    """Remembers the task handling each update, so a shutdown can wait for the turns in flight."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        task = asyncio.current_task()
        if task is None:
            return await handler(event, data)
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for the updates being handled; cancel what is left (releasing its quota)."""
        running = set(self._tasks)
        if not running:
            return
        log.info("waiting up to %.0fs for %d updates in flight", grace, len(running))
        _, unfinished = await asyncio.wait(running, timeout=grace)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("cancelled %d updates still running after %.0fs", len(unfinished), grace)
            await asyncio.wait(unfinished, timeout=5)
