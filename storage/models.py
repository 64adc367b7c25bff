"""Model lists set by admins: a kind's preference list, stored so that a restart keeps it."""

from __future__ import annotations

from storage.database import Database, utc_now


class ModelListsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def all(self) -> dict[str, list[str]]:
        rows = await self._db.fetch_all("SELECT kind, models FROM model_lists")
        return {row["kind"]: [model for model in row["models"].split(",") if model] for row in rows}

    async def set(self, kind: str, models: list[str], admin_id: int) -> None:
        await self._db.execute(
            """
            INSERT INTO model_lists (kind, models, changed_by) VALUES (?, ?, ?)
            ON CONFLICT (kind) DO UPDATE SET
                models = excluded.models,
                changed_by = excluded.changed_by,
                changed_at = ?
            """,
            (kind, ",".join(models), admin_id, utc_now()),
        )
