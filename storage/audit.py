"""The audit log: every change an admin makes, who made it, and when."""

from __future__ import annotations

from storage.database import Database


class AuditRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, admin_id: int, action: str, target_user: int, details: str = "") -> None:
        await self._db.execute(
            "INSERT INTO audit_log (admin_id, action, target_user, details) VALUES (?, ?, ?, ?)",
            (admin_id, action, target_user, details),
        )

    async def recent(self, limit: int = 20) -> list[tuple[int, str, int, str, str]]:
        rows = await self._db.fetch_all(
            "SELECT admin_id, action, target_user, details, created_at FROM audit_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def prune(self, before: str) -> int:
        return await self._db.execute("DELETE FROM audit_log WHERE created_at < ?", (before,))
