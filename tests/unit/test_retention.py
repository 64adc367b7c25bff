"""Retention.prune_once with the real repositories on a real SQLite file: what is old goes, what is recent or still
running stays. Old rows are written straight into the tables with their timestamps set in the past."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.retention import Retention
from storage import Database, HistoryRepository, UsageRepository
from storage.audit import AuditRepository
from storage.midjourney import MidjourneyRepository

HISTORY_DAYS = 30
DAY = 86400.0


@pytest.fixture
def database(any_database: Database) -> Database:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_database


def _retention(database: Database) -> Retention:
    return Retention(
        HistoryRepository(database),
        MidjourneyRepository(database),
        AuditRepository(database),
        UsageRepository(database),
        HISTORY_DAYS,
    )


def _ago(days: float) -> str:
    """An SQL literal of the timestamp `days` ago, in the very format the tables store (storage.database.utc_now)."""
    moment = datetime.now(UTC) - timedelta(hours=round(days * 24))
    return "'" + moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z'"


async def _column(database: Database, sql: str) -> list[object]:
    return [row[0] for row in await database.fetch_all(sql)]


async def _add_task(database: Database, task_id: str, state: str, finished_days_ago: float | None) -> None:
    now = time.time()
    finished = None if finished_days_ago is None else now - finished_days_ago * DAY
    await database.execute(
        """
        INSERT INTO mj_tasks (task_id, chat_id, requested_by, charged_user, charge_day, kind, state, created_at,
                              finished_at)
        VALUES (?, 1, 1, 1, '2026-01-01', 'imagine', ?, ?, ?)
        """,
        (task_id, state, now - 40 * DAY, finished),
    )
    for number in (1, 2):
        await database.execute(
            "INSERT INTO mj_buttons (key, task_id, custom_id, label) VALUES (?, ?, ?, ?)",
            (f"{task_id}-{number}", task_id, f"MJ::JOB::upsample::{number}::{task_id}", f"U{number}"),
        )


async def test_history_older_than_history_days_goes(database: Database) -> None:
    """Turns from 31 days ago are deleted; turns from 29 days ago and today are kept."""
    for label, days in (("old", 31), ("recent", 29), ("today", 0)):
        await database.execute(
            f"INSERT INTO history (chat_id, role, content, created_at) VALUES (1, 'user', ?, {_ago(days)})",
            (label,),
        )
    pruned = await _retention(database).prune_once()
    assert pruned["history"] == 1
    assert await _column(database, "SELECT content FROM history ORDER BY id") == ["recent", "today"]


async def test_finished_midjourney_tasks_go_after_a_week_with_their_buttons(database: Database) -> None:
    """Done and failed tasks finished 8 days ago go, buttons and all; one finished 6 days ago stays, and so do
    tasks still pending or being delivered, however old."""
    await _add_task(database, "done-old", "done", 8)
    await _add_task(database, "failed-old", "failed", 8)
    await _add_task(database, "done-recent", "done", 6)
    await _add_task(database, "pending-old", "pending", None)
    await _add_task(database, "delivering-old", "delivering", None)
    pruned = await _retention(database).prune_once()
    assert pruned["midjourney_tasks"] == 2
    kept = ["delivering-old", "done-recent", "pending-old"]
    assert await _column(database, "SELECT task_id FROM mj_tasks ORDER BY task_id") == kept
    assert await _column(database, "SELECT DISTINCT task_id FROM mj_buttons ORDER BY task_id") == kept


async def test_old_audit_entries_and_stale_reservations_go(database: Database) -> None:
    """Audit entries over a year old go, younger ones stay; reservations a day old go, an hour-old one stays."""
    for action, days in (("ban", 400), ("unban", 300)):
        await database.execute(
            f"INSERT INTO audit_log (admin_id, action, target_user, created_at) VALUES (1, ?, 2, {_ago(days)})",
            (action,),
        )
    for user_id, days in ((1, 25 / 24), (2, 1 / 24)):
        await database.execute(
            f"INSERT INTO reservations (user_id, kind, day, created_at) VALUES (?, 'chat', 'd', {_ago(days)})",
            (user_id,),
        )
    pruned = await _retention(database).prune_once()
    assert (pruned["audit"], pruned["reservations"]) == (1, 1)
    assert await _column(database, "SELECT action FROM audit_log") == ["unban"]
    assert await _column(database, "SELECT user_id FROM reservations") == [2]


async def test_a_second_round_finds_nothing(database: Database) -> None:
    """Pruning twice deletes nothing more, and an empty database prunes cleanly."""
    retention = _retention(database)
    assert await retention.prune_once() == {
        "history": 0,
        "midjourney_tasks": 0,
        "audit": 0,
        "reservations": 0,
        "albums": 0,
    }
    await database.execute(
        f"INSERT INTO history (chat_id, role, content, created_at) VALUES (1, 'user', 'x', {_ago(31)})"
    )
    assert (await retention.prune_once())["history"] == 1
    assert (await retention.prune_once())["history"] == 0
