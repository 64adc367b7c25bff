"""Long-term memory: each person's facts, in the order they were told, with their embeddings."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class StoredFact:
    id: int
    fact: str
    vector: bytes  # float32, little-endian
    model: str


class MemoryRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, owner: int, fact: str, vector: bytes, model: str) -> None:
        await self._db.execute(
            "INSERT INTO memories (owner, fact, vector, model) VALUES (?, ?, ?, ?)", (owner, fact, vector, model)
        )

    async def of(self, owner: int) -> list[StoredFact]:
        rows = await self._db.fetch_all(
            "SELECT id, fact, vector, model FROM memories WHERE owner = ? ORDER BY id", (owner,)
        )
        return [StoredFact(row["id"], row["fact"], bytes(row["vector"]), row["model"]) for row in rows]

    async def any_kept(self) -> bool:
        """Whether anyone has facts kept (their turns will recall them)."""
        return await self._db.fetch_one("SELECT 1 FROM memories LIMIT 1") is not None

    async def count(self, owner: int) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) FROM memories WHERE owner = ?", (owner,))
        return int(row[0]) if row else 0

    async def delete(self, owner: int, ids: list[int]) -> int:
        """Delete these facts of the owner's (never another's); how many went."""
        gone = 0
        async with self._db.transaction() as transaction:
            for fact_id in ids:
                gone += await transaction.execute(
                    "DELETE FROM memories WHERE owner = ? AND id = ?", (owner, fact_id)
                )
        return gone

    async def delete_all(self, owner: int) -> int:
        return await self._db.execute("DELETE FROM memories WHERE owner = ?", (owner,))
