"""What replicas on one PostgreSQL database share beyond the other tables: the requests in flight (for /cancel
and the one-heavy-request rule) and the parts of albums. A row in flight lives while its replica keeps pushing
its expiry on: the rows of a replica that died run out on their own."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class RequestRow:
    token: str
    actor_id: int
    what: str
    exclusive: bool
    replica: str


class RequestsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def take(self, row: RequestRow, lifetime: float) -> bool:
        """Record the request; for an exclusive one, only when the actor has no other exclusive one alive."""
        now = time.time()
        async with self._db.transaction() as transaction:
            if row.exclusive:
                other = await transaction.fetch_one(
                    "SELECT 1 FROM requests_in_flight WHERE actor_id = ? AND exclusive = 1 AND expires_at > ?",
                    (row.actor_id, now),
                )
                if other is not None:
                    return False
            await transaction.execute(
                "INSERT INTO requests_in_flight (token, actor_id, what, exclusive, replica, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row.token, row.actor_id, row.what, int(row.exclusive), row.replica, now + lifetime),
            )
        return True

    async def drop(self, token: str) -> None:
        await self._db.execute("DELETE FROM requests_in_flight WHERE token = ?", (token,))

    async def alive_of(self, actor_id: int) -> list[str]:
        """What the actor's requests alive on any replica are (their labels), oldest first."""
        rows = await self._db.fetch_all(
            "SELECT what FROM requests_in_flight WHERE actor_id = ? AND expires_at > ? ORDER BY expires_at",
            (actor_id, time.time()),
        )
        return [row[0] for row in rows]

    async def keep_alive(self, replica: str, lifetime: float) -> None:
        """The replica's requests live on; those of replicas that stopped pushing theirs are forgotten."""
        now = time.time()
        await self._db.execute(
            "UPDATE requests_in_flight SET expires_at = ? WHERE replica = ?", (now + lifetime, replica)
        )
        await self._db.execute("DELETE FROM requests_in_flight WHERE expires_at < ?", (now - lifetime,))


@dataclass(frozen=True, slots=True)
class AlbumKey:
    chat_id: int
    media_group_id: str


class AlbumRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_part(self, key: AlbumKey, message_id: int, message_json: str) -> None:
        await self._db.execute(
            "INSERT INTO album_parts (chat_id, media_group_id, message_id, message, received_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat_id, media_group_id, message_id) DO NOTHING",
            (key.chat_id, key.media_group_id, message_id, message_json, time.time()),
        )

    async def count(self, key: AlbumKey) -> int:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) FROM album_parts WHERE chat_id = ? AND media_group_id = ?",
            (key.chat_id, key.media_group_id),
        )
        return int(row[0]) if row else 0

    async def claim(self, key: AlbumKey, replica: str) -> bool:
        """True for the one caller, on any replica, that handles the album."""
        changed = await self._db.execute(
            "INSERT INTO album_claims (chat_id, media_group_id, claimed_by, claimed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (chat_id, media_group_id) DO NOTHING",
            (key.chat_id, key.media_group_id, replica, time.time()),
        )
        return changed == 1

    async def parts(self, key: AlbumKey) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT message FROM album_parts WHERE chat_id = ? AND media_group_id = ? ORDER BY message_id",
            (key.chat_id, key.media_group_id),
        )
        return [row[0] for row in rows]

    async def prune(self, before: float) -> int:
        """Forget albums received before `before` (unix seconds): long handled, or never to be."""
        await self._db.execute("DELETE FROM album_claims WHERE claimed_at < ?", (before,))
        return await self._db.execute("DELETE FROM album_parts WHERE received_at < ?", (before,))
