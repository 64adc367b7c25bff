"""Persistence on SQLite through aiosqlite: the connection, migrations and repositories (no aiogram here)."""

from storage.database import Database
from storage.history import HistoryEntry, HistoryRepository
from storage.usage import UsageRepository
from storage.users import UserRepository

__all__ = ["Database", "HistoryEntry", "HistoryRepository", "UsageRepository", "UserRepository"]
