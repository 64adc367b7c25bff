"""Persistence: SQLite through aiosqlite (the default) or PostgreSQL through asyncpg (several replicas), the
migrations of each, and the repositories (no aiogram here)."""

from storage.database import Database, Transaction, open_database
from storage.history import HistoryEntry, HistoryRepository
from storage.sqlite import SqliteDatabase
from storage.usage import UsageRepository
from storage.users import UserRepository

__all__ = [
    "Database",
    "HistoryEntry",
    "HistoryRepository",
    "SqliteDatabase",
    "Transaction",
    "UsageRepository",
    "UserRepository",
    "open_database",
]
