"""Albums: Telegram sends one message per picture; handlers get one message and the whole album."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import Message, TelegramObject

from storage.replicas import AlbumKey, AlbumRepository

# The parts of an album arrive within milliseconds of each other, usually in one getUpdates batch;
# wait this long after the last part before handling the album.
ALBUM_QUIET_SECONDS = 0.6


class AlbumCollector(BaseMiddleware):
    """Holds the first part of an album until no more parts come, then hands the handlers the part that carries
    the caption (where commands such as /edit live) with every part, in order, as `album`."""

    def __init__(self, quiet_seconds: float = ALBUM_QUIET_SECONDS) -> None:
        self._quiet = quiet_seconds
        self._albums: dict[tuple[int, str], list[Message]] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message) or event.media_group_id is None:
            return await handler(event, data)
        key = (event.chat.id, event.media_group_id)
        if key in self._albums:
            self._albums[key].append(event)
            return None  # the first part's task handles the album
        parts = self._albums[key] = [event]
        try:
            seen = 0
            while seen != len(parts):
                seen = len(parts)
                await asyncio.sleep(self._quiet)
        finally:
            del self._albums[key]
        parts.sort(key=lambda part: part.message_id)
        return await hand_over(handler, parts, data)


class SharedAlbumCollector(BaseMiddleware):
    """Albums when replicas share the updates: the parts of one album may reach different replicas, so each part
    is stored in the database; once no part has come for the quiet time, exactly one replica (the first to claim
    the album) hands the handlers the album, as AlbumCollector does."""

    def __init__(
        self, albums: AlbumRepository, replica: str, bot: Bot, quiet_seconds: float = ALBUM_QUIET_SECONDS
    ) -> None:
        self._albums = albums
        self._replica = replica
        self._bot = bot
        self._quiet = quiet_seconds

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message) or event.media_group_id is None:
            return await handler(event, data)
        key = AlbumKey(event.chat.id, event.media_group_id)
        await self._albums.add_part(key, event.message_id, event.model_dump_json(by_alias=True, exclude_none=True))
        seen = 0
        while (count := await self._albums.count(key)) != seen:
            seen = count
            await asyncio.sleep(self._quiet)
        if not await self._albums.claim(key, self._replica):
            return None  # another part's turn (here or on another replica) handles the album
        parts = [Message.model_validate_json(text).as_(self._bot) for text in await self._albums.parts(key)]
        return await hand_over(handler, parts, data)


async def hand_over(
    handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]], parts: list[Message], data: dict[str, Any]
) -> Any:
    """The handlers get the part that carries the caption (where commands such as /edit live), and every part, in
    order, as `album`."""
    lead = next((part for part in parts if part.caption), parts[0])
    data["album"] = parts
    return await handler(lead, data)
