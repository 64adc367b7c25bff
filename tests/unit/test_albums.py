"""The album collector: many updates of one album reach the handlers once, with every part, captioned part first."""

import asyncio
import datetime as dt

from aiogram.types import Chat, Message

from bot.telegram.albums import AlbumCollector


def _message(message_id: int, group: str | None, caption: str | None = None, chat_id: int = 1) -> Message:
    return Message(
        message_id=message_id,
        date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        chat=Chat(id=chat_id, type="private"),
        media_group_id=group,
        caption=caption,
    )


async def test_an_album_is_handled_once_with_all_parts_in_order() -> None:
    collector = AlbumCollector(quiet_seconds=0.05)
    handled: list[tuple[int, list[int]]] = []

    async def handler(event: Message, data: dict) -> str:
        handled.append((event.message_id, [part.message_id for part in data.get("album", [])]))
        return "done"

    parts = [_message(12, "g"), _message(11, "g"), _message(13, "g", caption="/edit x")]
    results = await asyncio.gather(*(collector(handler, part, {}) for part in parts))
    assert handled == [(13, [11, 12, 13])]  # the captioned part leads
    assert results.count("done") == 1


async def test_parts_arriving_late_are_still_collected() -> None:
    collector = AlbumCollector(quiet_seconds=0.1)
    handled: list[list[int]] = []

    async def handler(event: Message, data: dict) -> None:
        handled.append([part.message_id for part in data["album"]])

    first = asyncio.create_task(collector(handler, _message(1, "late"), {}))
    for message_id in (2, 3):
        await asyncio.sleep(0.06)  # each within the quiet time of the one before
        await collector(handler, _message(message_id, "late"), {})
    await first
    assert handled == [[1, 2, 3]]


async def test_single_messages_and_other_chats_pass_straight_through() -> None:
    collector = AlbumCollector(quiet_seconds=0.05)
    seen: list[tuple[int, bool]] = []

    async def handler(event: Message, data: dict) -> None:
        seen.append((event.chat.id, "album" in data))

    await asyncio.gather(
        collector(handler, _message(1, None), {}),
        collector(handler, _message(2, "same-id", chat_id=5), {}),
        collector(handler, _message(3, "same-id", chat_id=6), {}),
    )
    assert sorted(seen) == [(1, False), (5, True), (6, True)]
