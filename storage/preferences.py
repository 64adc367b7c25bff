"""Each user's own settings: language, reply voice, how voice notes and texts are answered, the chat model."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import Database

_COLUMNS = ("language", "voice", "voice_reply", "text_reply", "chat_model")


@dataclass(frozen=True, slots=True)
class StoredPreferences:
    language: str | None = None  # None: follow Telegram's language
    voice: str | None = None  # None: the bot's default voice
    voice_reply: str = "voice"  # voice, text or both
    text_reply: str = "text"  # text or voice
    chat_model: str | None = None  # None: the chat kind's model in use


class PreferencesRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def of(self, user_id: int) -> StoredPreferences:
        row = await self._db.fetch_one(
            "SELECT language, voice, voice_reply, text_reply, chat_model FROM user_settings WHERE user_id = ?",
            (user_id,),
        )
        return StoredPreferences(*row) if row else StoredPreferences()

    async def set(self, user_id: int, column: str, value: str | None) -> None:
        if column not in _COLUMNS:  # the column name is spliced into SQL: only ever one of ours
            raise ValueError(f"unknown setting {column!r}")
        await self._db.execute(
            f"""
            INSERT INTO user_settings (user_id, {column}) VALUES (?, ?)
            ON CONFLICT (user_id) DO UPDATE SET {column} = excluded.{column}
            """,  # noqa: S608
            (user_id, value),
        )
