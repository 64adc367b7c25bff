"""What the repositories ask of a database, whichever it is: SQLite (one process, the default) or PostgreSQL
(DATABASE_URL, any number of replicas). Both run the same SQL, written for SQLite with `?` parameters and
translated for PostgreSQL; both serialize write transactions, so a check and the write it allows are one step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


def utc_now() -> str:
    """Now as the tables store times: ISO 8601, UTC, milliseconds (what SQLite's strftime('%Y-%m-%dT%H:%M:%fZ')
    writes); passed as a parameter, so both databases store the same text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Transaction(Protocol):
    """The statements of one transaction. Rows read by key (`row["name"]`) or position (`row[0]`)."""

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a statement; the rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None: ...

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any: ...

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]: ...


class Database(Protocol):
    dialect: str  # "sqlite" or "postgresql"

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back when it raises (cancellation too);
        write transactions run one at a time, across processes on PostgreSQL too."""
        ...

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int: ...

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any: ...

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]: ...

    async def schema_version(self) -> int: ...

    async def notify(self, topic: str, payload: str = "") -> None:
        """Tell every process on this database (this one too) that something of `topic` changed."""
        ...

    async def listen(self, topic: str, callback: Callable[[str], None]) -> None:
        """Call `callback(payload)` on the event loop for each notice of `topic`, from any process."""
        ...

    async def close(self) -> None: ...


async def open_database(path: Path, url: str = "") -> Database:
    """PostgreSQL when a URL is given, else the SQLite file at `path`; migrated to the newest schema."""
    if url:
        from storage.postgres import PostgresDatabase  # asyncpg is imported only by those who use it

        return await PostgresDatabase.open(url)
    from storage.sqlite import SqliteDatabase

    return await SqliteDatabase.open(path)
