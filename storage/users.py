"""Who has talked to the bot: name, language, and whether they are banned."""

from __future__ import annotations

from storage.database import Database


class UserRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def remember(self, user_id: int, name: str, language: str) -> None:
        """Record a user's latest name and language, creating them on first contact."""
        await self._db.execute(
            """
            INSERT INTO users (id, name, language) VALUES (?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                name = excluded.name,
                language = excluded.language,
                last_seen = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
            """,
            (user_id, name, language),
        )

    async def is_banned(self, user_id: int) -> bool:
        row = await self._db.fetch_one("SELECT banned FROM users WHERE id = ?", (user_id,))
        return bool(row and row["banned"])

    async def set_banned(self, user_id: int, banned: bool) -> None:
        await self._db.execute(
            """
            INSERT INTO users (id, banned) VALUES (?, ?)
            ON CONFLICT (id) DO UPDATE SET banned = excluded.banned
            """,
            (user_id, int(banned)),
        )
