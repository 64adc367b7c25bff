"""The quota rules against a real SQLite file: reserve, commit, release, limits, overrides, races; the charging
through a turn, as every paid request is charged."""

import asyncio
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.config import Settings
from bot.inflight import InFlight
from bot.quotas import QuotaExceeded, Quotas
from bot.turns import Turn, TurnRule, Turns
from storage import Database, SqliteDatabase, UsageRepository


def _settings(**quotas: int) -> Settings:
    return Settings(BOT_TOKEN="1:x", API_KEY="k", **{f"QUOTA_{k.upper()}": v for k, v in quotas.items()})


@pytest.fixture
def database(any_database: Database) -> Database:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_database


def _quotas(database: Database, day: str = "2026-01-01", **limits: int) -> Quotas:
    return Quotas(UsageRepository(database), _settings(**limits), today=lambda: day)


def _charge(quotas: Quotas, user_id: int, kind: str) -> AbstractAsyncContextManager[Turn]:
    """A paid request of the user's, as every one runs: a turn, charged through the quota rules."""
    return Turns(quotas, InFlight()).run(user_id, TurnRule(kind, "request", exclusive=False))


async def test_success_is_charged_and_failure_is_not(database: Database) -> None:
    quotas = _quotas(database, voice=5)
    async with _charge(quotas, 1, "voice") as turn:
        turn.tokens = 42
    with pytest.raises(RuntimeError):
        async with _charge(quotas, 1, "voice"):
            raise RuntimeError("upstream broke")
    report = {line.kind: line for line in await quotas.report(1)}
    assert report["voice"].used == 1
    assert report["voice"].limit == 5
    row = await database.fetch_one("SELECT count, tokens FROM usage WHERE user_id = 1 AND kind = 'voice'")
    assert tuple(row) == (1, 42)
    assert await database.fetch_all("SELECT * FROM reservations") == []


async def test_limit_counts_uses_in_flight(database: Database) -> None:
    quotas = _quotas(database, chat=1)
    first = await quotas.reserve(1, "chat")
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(1, "chat")
    assert (refused.value.kind, refused.value.limit) == ("chat", 1)
    assert "chat" in refused.value.user_message and "1" in refused.value.user_message
    await quotas.release(first)
    await quotas.reserve(1, "chat")  # released, so there is room again


async def test_zero_refuses_and_minus_one_is_unlimited(database: Database) -> None:
    quotas = _quotas(database, draw=0, edit=-1)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(1, "draw")
    assert "draw" in refused.value.user_message and "0" in refused.value.user_message
    for _ in range(30):
        async with _charge(quotas, 1, "edit"):
            pass
    assert {line.kind: line.used for line in await quotas.report(1)}["edit"] == 30


async def test_override_beats_default_and_users_are_separate(database: Database) -> None:
    usage = UsageRepository(database)
    quotas = _quotas(database, imagine=1)
    await usage.set_override(7, ["imagine"], 3)
    for _ in range(3):
        async with _charge(quotas, 7, "imagine"):
            pass
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(7, "imagine")
    async with _charge(quotas, 8, "imagine"):
        pass
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(8, "imagine")


async def test_a_new_day_starts_from_zero(database: Database) -> None:
    async with _charge(_quotas(database, "2026-01-01", chat=1), 1, "chat"):
        pass
    with pytest.raises(QuotaExceeded):
        await _quotas(database, "2026-01-01", chat=1).reserve(1, "chat")
    await _quotas(database, "2026-01-02", chat=1).reserve(1, "chat")


async def test_parallel_requests_cannot_overspend(database: Database) -> None:
    quotas = _quotas(database, chat=10)
    admitted = 0

    async def attempt() -> None:
        nonlocal admitted
        try:
            async with _charge(quotas, 1, "chat"):
                admitted += 1
                await asyncio.sleep(0.01)
        except QuotaExceeded:
            pass

    await asyncio.gather(*(attempt() for _ in range(100)))
    assert admitted == 10
    assert {line.kind: line.used for line in await quotas.report(1)}["chat"] == 10


async def test_cancelled_work_is_released(database: Database) -> None:
    quotas = _quotas(database, voice=1)
    started = asyncio.Event()

    async def slow() -> None:
        async with _charge(quotas, 1, "voice"):
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await quotas.reserve(1, "voice")  # the cancelled use was given back


async def test_reservations_of_a_dead_process_are_released(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    first = await SqliteDatabase.open(path)
    await _quotas(first, voice=1).reserve(1, "voice")
    await first.close()  # the process "dies" holding the reservation
    second = await SqliteDatabase.open(path)
    try:
        assert await UsageRepository(second).release_all() == 1
        await _quotas(second, voice=1).reserve(1, "voice")
    finally:
        await second.close()


async def test_a_reservation_cancelled_half_way_is_given_back(database: Database) -> None:
    """Quotas.reserve cancelled after 0, 1, 2… event-loop turns (before, during and after its transaction) leaves no
    reservation behind: one written by a transaction the cancellation could not stop is released."""
    quotas = _quotas(database, chat=1000)
    for turns in range(60):
        task = asyncio.create_task(quotas.reserve(1, "chat"))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            use = await task
        except asyncio.CancelledError:
            pass
        else:  # it finished before the cancellation came: the caller owns that use, and gives it back
            await quotas.release(use)
        left = await database.fetch_all("SELECT id FROM reservations")
        assert len(left) == 0, f"a reservation left behind by a cancellation after {turns} turns"


async def test_a_replicas_reservations_stop_counting_when_it_stops_keeping_them_alive(database: Database) -> None:
    """With replicas, a use in flight lives while its replica keeps it alive: one killed mid-request gives its
    people's uses back within the lifetime, not at some other replica's start."""
    living = UsageRepository(database, holder="replica-a", lifetime=0.4)
    held = await living.reserve(1, "voice", "2026-01-01", 1)
    assert held.reservation_id is not None
    assert (await living.reserve(1, "voice", "2026-01-01", 1)).reservation_id is None
    await asyncio.sleep(0.3)
    await living.keep_alive()  # pushed on: still counted
    await asyncio.sleep(0.3)
    assert (await living.reserve(1, "voice", "2026-01-01", 1)).reservation_id is None
    assert (await living.taken_on(1, "2026-01-01"))["voice"] == 1
    await asyncio.sleep(0.5)  # the replica died: nobody pushes it on
    assert await living.taken_on(1, "2026-01-01") == {}
    assert (await living.reserve(1, "voice", "2026-01-01", 1)).reservation_id is not None
