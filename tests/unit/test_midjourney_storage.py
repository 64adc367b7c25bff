"""Midjourney task bookkeeping: charged on acceptance, delivered once, refunded once, buttons claimed once."""

import pytest

from storage import Database, UsageRepository
from storage.midjourney import MidjourneyRepository, NewMjTask

DAY = "2026-02-03"


@pytest.fixture
def database(any_database: Database) -> Database:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_database


async def _create(db: Database, task_id: str, user: int = 5, button: str | None = None) -> None:
    usage = UsageRepository(db)
    outcome = await usage.reserve(user, "imagine", DAY, 10)
    assert outcome.reservation_id is not None
    task = NewMjTask(task_id, chat_id=user, thread_id=0, request_message_id=1, requested_by=user,
                     kind="imagine", prompt="a cat", pressed_button=button)  # fmt: skip
    await MidjourneyRepository(db).create_charged(task, outcome.reservation_id, DAY)


async def _used(db: Database, user: int = 5) -> int:
    return (await UsageRepository(db).taken_on(user, DAY)).get("imagine", 0)


async def test_acceptance_charges_and_tracks(database: Database) -> None:
    await _create(database, "t1")
    assert await _used(database) == 1
    assert [row.task_id for row in await MidjourneyRepository(database).pending()] == ["t1"]
    assert await database.fetch_all("SELECT * FROM reservations") == []


async def test_delivery_is_claimed_once_and_survives_a_crash_mid_delivery(database: Database) -> None:
    repo = MidjourneyRepository(database)
    await _create(database, "t1")
    assert await repo.claim_delivery("t1")
    assert not await repo.claim_delivery("t1")  # a second round (or replica) does not deliver again
    assert await repo.pending() == []
    assert await repo.resume_interrupted_deliveries() == 1  # the claimer died before sending
    assert await repo.claim_delivery("t1")
    await repo.mark_delivered("t1", result_message_id=77)
    assert (await repo.task_of_result(5, 77)).task_id == "t1"
    assert not await repo.fail_and_refund("t1")  # delivered work is never refunded
    assert await _used(database) == 1


async def test_failure_refunds_exactly_once(database: Database) -> None:
    repo = MidjourneyRepository(database)
    await _create(database, "t1")
    await _create(database, "t2")
    assert await _used(database) == 2
    assert await repo.fail_and_refund("t1")
    assert not await repo.fail_and_refund("t1")
    assert await _used(database) == 1


async def test_a_button_runs_one_job_at_a_time(database: Database) -> None:
    repo = MidjourneyRepository(database)
    [button] = await repo.save_buttons("grid", [("MJ::JOB::upsample::2::h", "U2")])
    assert len(button.key.encode()) <= 40
    assert await repo.claim_button(button.key)
    assert not await repo.claim_button(button.key)
    await _create(database, "child", button=button.key)
    await repo.fail_and_refund("child")  # the job ended: the button works again
    assert await repo.claim_button(button.key)
    assert await repo.button("forged") is None
