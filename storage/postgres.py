"""PostgreSQL through asyncpg, for several replicas sharing one database (DATABASE_URL). The repositories' SQL
runs as it is, with its parameters renumbered (storage.sql); write transactions take one advisory lock, so they
run one at a time across every replica, as SQLite's BEGIN IMMEDIATE makes them run within one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from storage.sql import to_postgres
from storage.sqlite import migrations

# Advisory lock keys (any two numbers nobody else uses): one for write transactions, one for migrating.
_WRITES = 7_301_001
_MIGRATING = 7_301_002
log = logging.getLogger(__name__)

# The one channel of this bot's notices; each carries "topic" and a payload, split by a newline.
_CHANNEL = "wenwen_bot"
# Seconds between tries to listen again after the listening connection was lost.
_RELISTEN_SECONDS = 1.0
# Connections per replica: turns wait on the gateway, not on the database, so a few serve hundreds of turns.
_POOL_SIZE = 10


def _changed(status: str) -> int:
    """The row count of a command status such as "UPDATE 3" or "INSERT 0 1"."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTransaction:
    """The statements of one transaction on a pooled connection (see storage.database.Transaction)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        return _changed(await self._connection.execute(to_postgres(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        await self._connection.executemany(to_postgres(sql), [tuple(row) for row in rows])

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return await self._connection.fetchrow(to_postgres(sql), *params)

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return list(await self._connection.fetch(to_postgres(sql), *params))


class PostgresDatabase:
    """A pool of connections to the shared database."""

    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._listeners: dict[str, list[Callable[[str], None]]] = {}
        self._listening: asyncpg.Connection | None = None
        self._relisten: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=_POOL_SIZE, command_timeout=60)
        database = cls(pool, url)
        try:
            await database._migrate()
        except BaseException:
            await pool.close()
            raise
        return database

    async def close(self) -> None:
        if self._relisten is not None:
            self._relisten.cancel()
        if self._listening is not None:
            connection, self._listening = self._listening, None
            await connection.close()
        await self._pool.close()

    async def notify(self, topic: str, payload: str = "") -> None:
        await self._pool.execute("SELECT pg_notify($1, $2)", _CHANNEL, f"{topic}\n{payload}")

    async def listen(self, topic: str, callback: Callable[[str], None]) -> None:
        """Notices come on a connection of their own (a pooled one would be handed to others)."""
        self._listeners.setdefault(topic, []).append(callback)
        if self._listening is None:
            await self._start_listening()

    async def _start_listening(self) -> None:
        connection = await asyncpg.connect(self._url)
        await connection.add_listener(_CHANNEL, self._heard)
        connection.add_termination_listener(self._lost)
        self._listening = connection

    def _heard(self, _connection: object, _pid: int, _channel: str, message: str) -> None:
        topic, _, payload = message.partition("\n")
        for callback in self._listeners.get(topic, ()):
            callback(payload)

    def _lost(self, _connection: object) -> None:
        if self._listening is None:
            return  # closed on purpose
        log.warning("the database connection carrying notices from other replicas was lost; listening again")
        self._listening = None
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        while self._listening is None:
            try:
                await self._start_listening()
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(_RELISTEN_SECONDS)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        """A write transaction, after every other replica's that holds the lock. A cancellation rolls it back:
        asyncpg's transaction block does so, and the pool resets a connection whose query was interrupted."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _WRITES)
            yield PostgresTransaction(connection)

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement in its own transaction; the rows it changed."""
        return _changed(await self._pool.execute(to_postgres(sql), *params))

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return await self._pool.fetchrow(to_postgres(sql), *params)

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return list(await self._pool.fetch(to_postgres(sql), *params))

    async def schema_version(self) -> int:
        row = await self._pool.fetchrow("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        """The numbered scripts above the recorded version, each in its own transaction; replicas starting
        together take turns, and the later ones find the work done."""
        async with self._pool.acquire() as connection:
            await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATING)
            try:
                await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY)")
                current = await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                for number, script in migrations("postgresql"):
                    if number <= current:
                        continue
                    async with connection.transaction():
                        await connection.execute(script)
                        await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
            finally:
                await asyncio.shield(connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATING))
