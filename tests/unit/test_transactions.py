"""Database.transaction under cancellation: a cancelled await on aiosqlite does not stop the statement already
handed to the connection's thread, so a cancellation landing on BEGIN must still not leave the shared connection
inside a transaction, and a cancelled block must leave none of its writes behind."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.config import Settings
from bot.quotas import Quotas
from storage import Database, SqliteDatabase, UsageRepository

# Event-loop turns after which the task is cancelled: from "before it started" through BEGIN (queued, then run by
# aiosqlite's thread), the body's writes and the COMMIT, to "long finished".
TURNS = range(60)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await SqliteDatabase.open(tmp_path / "transactions.sqlite3")
    yield db
    await db.close()


class Statements:
    """Tells the test the moment a statement starting with a given word is handed to aiosqlite: the task issuing
    it is then suspended on it, so a cancellation lands exactly there."""

    def __init__(self) -> None:
        self._word = ""
        self.issued = asyncio.Event()

    def watch_for(self, word: str) -> asyncio.Event:
        self._word, self.issued = word, asyncio.Event()
        return self.issued

    def seen(self, sql: str) -> None:
        if self._word and sql.lstrip().upper().startswith(self._word):
            self._word = ""
            self.issued.set()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Statements:
    watch = Statements()
    execute = aiosqlite.Connection.execute

    def watched(self: aiosqlite.Connection, sql: str, *args: Any, **kwargs: Any) -> Any:
        watch.seen(sql)
        return execute(self, sql, *args, **kwargs)  # aiosqlite's Result: awaitable and an async context manager

    monkeypatch.setattr(aiosqlite.Connection, "execute", watched)
    return watch


async def _rows(database: Database, user_id: int) -> int:
    row = await database.fetch_one("SELECT COUNT(*) FROM reservations WHERE user_id = ?", (user_id,))
    assert row is not None
    return int(row[0])


async def _two_writes(database: Database, user_id: int) -> None:
    async with database.transaction() as connection:
        for _ in range(2):
            await connection.execute(
                "INSERT INTO reservations (user_id, kind, day) VALUES (?, 'chat', 'd')", (user_id,)
            )


async def test_a_cancellation_anywhere_never_leaves_the_connection_in_a_transaction(database: Database) -> None:
    """Cancelled after 0, 1, 2… event-loop turns (some land while BEGIN runs in aiosqlite's thread), the task
    leaves the connection usable: a new transaction and a quota reservation both work afterwards (they used to fail
    with "cannot start a transaction within a transaction"), and the block's writes are all there or none."""
    usage = UsageRepository(database)
    for turns in TURNS:
        task = asyncio.create_task(_two_writes(database, turns))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await _rows(database, turns) in (0, 2), f"half a transaction after {turns} turns"

        async with database.transaction() as connection:
            await connection.execute("INSERT INTO reservations (user_id, kind, day) VALUES (-1, 'chat', 'd')")
        outcome = await usage.reserve(-2, "chat", "d", 1000)
        assert outcome.reservation_id is not None, f"no reservation after a cancellation at {turns} turns"
    assert await _rows(database, -1) == len(TURNS)
    assert await _rows(database, -2) == len(TURNS)


async def test_a_cancellation_during_the_body_rolls_its_writes_back(database: Database) -> None:
    """A block cancelled after its first write (while it waits for something else) leaves nothing written."""
    wrote = asyncio.Event()

    async def write_then_wait() -> None:
        async with database.transaction() as connection:
            await connection.execute("INSERT INTO reservations (user_id, kind, day) VALUES (7, 'chat', 'd')")
            wrote.set()
            await asyncio.Event().wait()  # never set: only the cancellation ends this

    task = asyncio.create_task(write_then_wait())
    await wrote.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _rows(database, 7) == 0
    await _two_writes(database, 7)  # and the next transaction works
    assert await _rows(database, 7) == 2


@pytest.mark.parametrize(("word", "written"), [("BEGIN", 0), ("INSERT", 0), ("COMMIT", 2)])
async def test_a_cancellation_landing_on_each_statement(
    database: Database, statements: Statements, word: str, written: int
) -> None:
    """Cancelled exactly while its BEGIN, its first INSERT or its COMMIT is in aiosqlite's hands, a transaction
    leaves nothing half done: nothing written (BEGIN, INSERT) or all of it (COMMIT, which runs anyway), and the
    connection outside any transaction, so the next one works."""
    issued = statements.watch_for(word)
    task = asyncio.create_task(_two_writes(database, 5))
    await issued.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _rows(database, 5) == written
    await _two_writes(database, 6)
    assert await _rows(database, 6) == 2


@pytest.mark.parametrize("word", ["BEGIN", "SELECT", "INSERT", "COMMIT"])
async def test_a_reservation_cancelled_on_each_statement_is_not_left_behind(
    database: Database, statements: Statements, word: str
) -> None:
    """Quotas.reserve cancelled exactly while one of its statements runs leaves no reservation, even when the
    cancellation lands on the COMMIT that writes it anyway; and the next reservation works."""
    quotas = Quotas(UsageRepository(database), Settings(BOT_TOKEN="1:x", API_KEY="k"), today=lambda: "2026-01-01")
    issued = statements.watch_for(word)
    task = asyncio.create_task(quotas.reserve(1, "chat"))
    await issued.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await database.fetch_all("SELECT id FROM reservations") == []
    use = await quotas.reserve(1, "chat")
    assert [row[0] for row in await database.fetch_all("SELECT id FROM reservations")] == [use.reservation_id]
