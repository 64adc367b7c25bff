"""Conversation history per chat (and per forum topic), kept as text so it survives restarts."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    role: str  # "user" or "assistant"
    content: str
    speaker: str = ""


class HistoryRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def append_exchange(
        self, chat_id: int, thread_id: int, question: HistoryEntry, answer: HistoryEntry
    ) -> None:
        """Store a question and its answer together, so the history never holds half a turn."""
        async with self._db.transaction() as transaction:
            await transaction.executemany(
                "INSERT INTO history (chat_id, thread_id, role, speaker, content) VALUES (?, ?, ?, ?, ?)",
                [(chat_id, thread_id, entry.role, entry.speaker, entry.content) for entry in (question, answer)],
            )

    async def recent(self, chat_id: int, thread_id: int, limit: int) -> list[HistoryEntry]:
        """The last `limit` entries of the conversation, oldest first."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            """
            SELECT role, speaker, content FROM (
                SELECT id, role, speaker, content FROM history
                WHERE chat_id = ? AND thread_id = ?
                ORDER BY id DESC LIMIT ?
            ) AS latest ORDER BY id
            """,
            (chat_id, thread_id, limit),
        )
        return [HistoryEntry(role=row["role"], content=row["content"], speaker=row["speaker"]) for row in rows]

    async def clear(self, chat_id: int, thread_id: int) -> int:
        """Forget a conversation; returns how many entries were removed."""
        return await self._db.execute(
            "DELETE FROM history WHERE chat_id = ? AND thread_id = ?", (chat_id, thread_id)
        )

    async def prune(self, before: str) -> int:
        """Forget every turn stored before `before` (an ISO timestamp, UTC); returns how many entries went."""
        return await self._db.execute("DELETE FROM history WHERE created_at < ?", (before,))
