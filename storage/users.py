"""Who has talked to the bot: name, language, and whether they are banned."""

from __future__ import annotations

from storage.database import Database, utc_now


class UserRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def remember(self, user_id: int, name: str, language: str) -> None:
        """Record a user's latest name and language and that they were seen now, creating them on first contact."""
        await self._db.execute(
            """
            INSERT INTO users (id, name, language) VALUES (?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                name = excluded.name,
                language = excluded.language,
                last_seen = ?
            """,
            (user_id, name, language, utc_now()),
        )

    async def name_of(self, user_id: int) -> str | None:
        row = await self._db.fetch_one("SELECT name FROM users WHERE id = ?", (user_id,))
        return row["name"] if row else None

    async def banned_ids(self) -> set[int]:
        rows = await self._db.fetch_all("SELECT id FROM users WHERE banned = 1")
        return {int(row["id"]) for row in rows}

    async def set_banned(self, user_id: int, banned: bool) -> None:
        """Ban or unban; either way the next refusal is announced once again."""
        await self._db.execute(
            """
            INSERT INTO users (id, banned) VALUES (?, ?)
            ON CONFLICT (id) DO UPDATE SET banned = excluded.banned, ban_notified = 0
            """,
            (user_id, int(banned)),
        )

    async def claim_ban_notice(self, user_id: int) -> bool:
        """True once per ban: the caller tells the user, every later message goes unanswered."""
        changed = await self._db.execute(
            "UPDATE users SET ban_notified = 1 WHERE id = ? AND banned = 1 AND ban_notified = 0", (user_id,)
        )
        return changed == 1

    async def counts(self, since: str) -> tuple[int, int]:
        """(all users, users seen at or after `since`, an ISO timestamp)."""
        row = await self._db.fetch_one(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN last_seen >= ? THEN 1 ELSE 0 END), 0) FROM users", (since,)
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)
