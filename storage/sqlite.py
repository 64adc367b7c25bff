"""SQLite, the embedded default: one aiosqlite connection per process, in WAL mode, with serialized transactions
and migrations."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class SqliteTransaction:
    """The statements of one transaction on the connection (see storage.database.Transaction)."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._connection.execute(sql, tuple(params))
        changed = cursor.rowcount
        await cursor.close()
        return changed

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        await self._connection.executemany(sql, [tuple(row) for row in rows])

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        async with self._connection.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._connection.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())


class SqliteDatabase:
    """The process's single SQLite connection.

    Every statement runs under one asyncio lock: statements from different coroutines would otherwise
    interleave inside each other's transactions on the shared connection.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self._listeners: dict[str, list[Callable[[str], None]]] = {}

    dialect = "sqlite"

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module must not open transactions behind our back;
        # we say BEGIN IMMEDIATE ourselves so check-then-write is atomic against other writers.
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        database = cls(connection)
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL survives a killed process (only a power cut can lose the last commits).
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA busy_timeout = 5000")
            await connection.execute("PRAGMA foreign_keys = ON")
            await database._migrate()
        except BaseException:
            await connection.close()
            raise
        return database

    async def close(self) -> None:
        async with self._lock:
            await self._connection.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        """BEGIN IMMEDIATE … COMMIT, rolled back when the block raises, cancellation included.

        A cancelled await on aiosqlite does not stop the statement: it is already queued for the connection's
        thread and runs anyway. So a cancellation that lands on BEGIN still leaves a transaction open, and one
        that lands on COMMIT still commits. The rollback is therefore queued whatever happened (the thread runs it
        after the BEGIN; with no transaction open it has nothing to undo), and it and the commit are shielded, so
        the connection is never left inside a transaction for the next caller.
        """
        async with self._lock:
            try:
                await self._connection.execute("BEGIN IMMEDIATE")
                yield SqliteTransaction(self._connection)
                await asyncio.shield(self._connection.execute("COMMIT"))
            except BaseException:
                await asyncio.shield(self._roll_back())
                raise

    async def _roll_back(self) -> None:
        try:
            await self._connection.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # no transaction was open: the BEGIN never ran

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            async with self._connection.execute(sql, tuple(params)) as cursor:
                return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self._lock:
            async with self._connection.execute(sql, tuple(params)) as cursor:
                return await cursor.fetchone()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own (autocommitted) transaction; the rows it changed."""
        async with self._lock:
            cursor = await self._connection.execute(sql, tuple(params))
            changed = cursor.rowcount
            await cursor.close()
            return changed

    async def notify(self, topic: str, payload: str = "") -> None:
        """One process per SQLite file: its own listeners are everyone."""
        for callback in self._listeners.get(topic, ()):
            callback(payload)

    async def listen(self, topic: str, callback: Callable[[str], None]) -> None:
        self._listeners.setdefault(topic, []).append(callback)

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        """Apply the numbered files in storage/migrations above PRAGMA user_version, each atomically."""
        current = await self.schema_version()
        for number, script in _migrations():
            if number <= current:
                continue
            # executescript runs the whole file; wrapping it in BEGIN/COMMIT together with the version
            # bump means a crash leaves either the old schema or the new one, never half of it.
            await self._connection.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )


def _migrations() -> list[tuple[int, str]]:
    return migrations("sqlite")


def migrations(dialect: str) -> list[tuple[int, str]]:
    """The numbered migration scripts of a dialect (storage/migrations/<dialect>), in order."""
    folder = resources.files("storage").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)
