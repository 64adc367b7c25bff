"""Midjourney tasks being tracked and the buttons under delivered pictures; every state change is one
conditional UPDATE, so a task is delivered or refunded once even across restarts."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.database import Database, Transaction
from storage.usage import count_use, uncount_use

PAID_KIND = "imagine"  # every Midjourney job is paid from the imagine quota
# How long a delivery may take before, with replicas, another one takes it over (its deliverer died).
DELIVERY_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class NewMjTask:
    task_id: str
    chat_id: int
    thread_id: int
    request_message_id: int | None
    requested_by: int
    kind: str  # imagine, blend, action
    prompt: str
    pressed_button: str | None = None
    locale: str = "en"  # the language its messages are written in
    original_prompt: str = ""  # the words it was asked in, when the prompt was rewritten into English


@dataclass(frozen=True, slots=True)
class MjTaskRow:
    task_id: str
    chat_id: int
    thread_id: int
    request_message_id: int | None
    status_message_id: int | None
    requested_by: int
    charged_user: int
    charge_day: str
    kind: str
    prompt: str
    pressed_button: str | None
    state: str
    shown_status: str
    shown_progress: int
    shown_image: bool
    created_at: float
    locale: str = "en"
    original_prompt: str = ""

    @classmethod
    def from_row(cls, row: Any) -> MjTaskRow:
        return cls(
            task_id=row["task_id"],
            chat_id=row["chat_id"],
            thread_id=row["thread_id"],
            request_message_id=row["request_message_id"],
            status_message_id=row["status_message_id"],
            requested_by=row["requested_by"],
            charged_user=row["charged_user"],
            charge_day=row["charge_day"],
            kind=row["kind"],
            prompt=row["prompt"],
            pressed_button=row["pressed_button"],
            state=row["state"],
            shown_status=row["shown_status"],
            shown_progress=row["shown_progress"],
            shown_image=bool(row["shown_image"]),
            created_at=row["created_at"],
            locale=row["locale"],
            original_prompt=row["original_prompt"],
        )


@dataclass(frozen=True, slots=True)
class MjButtonRow:
    key: str
    task_id: str
    custom_id: str
    label: str
    busy: bool


class MidjourneyRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_charged(self, task: NewMjTask, reservation_id: int, charge_day: str) -> None:
        """The gateway accepted the job: count the payer's use and start tracking, in one transaction."""
        async with self._db.transaction() as transaction:
            await count_use(transaction, reservation_id, task.requested_by, PAID_KIND, charge_day, 0)
            await transaction.execute(
                """
                INSERT INTO mj_tasks (task_id, chat_id, thread_id, request_message_id, requested_by, charged_user,
                                      charge_day, kind, prompt, pressed_button, locale, created_at, original_prompt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    task.task_id, task.chat_id, task.thread_id, task.request_message_id, task.requested_by,
                    task.requested_by, charge_day, task.kind, task.prompt, task.pressed_button, task.locale,
                    time.time(), task.original_prompt,
                ),
            )  # fmt: skip

    async def pending(self) -> list[MjTaskRow]:
        rows = await self._db.fetch_all("SELECT * FROM mj_tasks WHERE state = 'pending' ORDER BY created_at")
        return [MjTaskRow.from_row(row) for row in rows]

    async def lease(self, holder: str, seconds: float) -> list[MjTaskRow]:
        """The pending tasks this replica tracks from now until `seconds` from now: its own, and those nobody
        holds or whose holder let its lease run out (it died). A delivery whose replica died half-way is pending
        again. Replicas leasing at the same moment skip each other's rows (FOR UPDATE SKIP LOCKED), so each task
        has one holder. PostgreSQL only: one SQLite process tracks everything (`pending`)."""
        now = time.time()
        async with self._db.transaction() as transaction:
            await transaction.execute(
                "UPDATE mj_tasks SET state = 'pending' WHERE state = 'delivering' AND lease_until < ?", (now,)
            )
            # Its own first, every one of them (a row another statement holds for a moment is waited for)...
            rows = await transaction.fetch_all(
                "UPDATE mj_tasks SET lease_until = ? WHERE state = 'pending' AND leased_by = ? RETURNING *",
                (now + seconds, holder),
            )
            # ...then the tasks nobody holds, skipping those another replica is taking at this moment.
            rows += await transaction.fetch_all(
                """
                UPDATE mj_tasks SET leased_by = ?1, lease_until = ?2
                WHERE task_id IN (
                    SELECT task_id FROM mj_tasks
                    WHERE state = 'pending' AND (leased_by IS NULL OR (leased_by <> ?1 AND lease_until < ?3))
                    ORDER BY created_at
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING *
                """,
                (holder, now + seconds, now),
            )
        return sorted((MjTaskRow.from_row(row) for row in rows), key=lambda row: row.created_at)

    async def count_pending(self) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) FROM mj_tasks WHERE state = 'pending'")
        return int(row[0]) if row else 0

    async def set_status_message(self, task_id: str, message_id: int | None, is_photo: bool) -> None:
        await self._db.execute(
            "UPDATE mj_tasks SET status_message_id = ?, shown_image = ? WHERE task_id = ?",
            (message_id, int(is_photo), task_id),
        )

    async def record_shown(self, task_id: str, status: str, progress: int) -> None:
        await self._db.execute(
            "UPDATE mj_tasks SET shown_status = ?, shown_progress = ? WHERE task_id = ?",
            (status, progress, task_id),
        )

    async def rename(self, old_task_id: str, new_task_id: str) -> None:
        """A modal answer may continue under a new task id."""
        await self._db.execute("UPDATE mj_tasks SET task_id = ? WHERE task_id = ?", (new_task_id, old_task_id))

    async def claim_delivery(self, task_id: str, seconds: float = DELIVERY_SECONDS) -> bool:
        """Only the caller that moves the task out of 'pending' delivers it; with replicas, the others leave it
        alone for `seconds` (a delivery downloads and uploads a picture)."""
        changed = await self._db.execute(
            "UPDATE mj_tasks SET state = 'delivering', lease_until = ? WHERE task_id = ? AND state = 'pending'",
            (time.time() + seconds, task_id),
        )
        return changed == 1

    async def release_delivery(self, task_id: str) -> None:
        """The delivery failed half-way (the image did not download): the next poll tries again."""
        await self._db.execute(
            "UPDATE mj_tasks SET state = 'pending' WHERE task_id = ? AND state = 'delivering'", (task_id,)
        )

    async def mark_delivered(self, task_id: str, result_message_id: int) -> None:
        async with self._db.transaction() as transaction:
            await transaction.execute(
                """
                UPDATE mj_tasks SET state = 'done', result_message_id = ?, finished_at = ?
                WHERE task_id = ? AND state = 'delivering'
                """,
                (result_message_id, time.time(), task_id),
            )
            await _free_pressed_button(transaction, task_id)

    async def fail_and_refund(self, task_id: str) -> bool:
        """Close a task that will never deliver and give the payer their use back, once."""
        async with self._db.transaction() as transaction:
            row = await transaction.fetch_one(
                """
                UPDATE mj_tasks SET state = 'failed', finished_at = ?
                WHERE task_id = ? AND state IN ('pending', 'delivering')
                RETURNING charged_user, charge_day
                """,
                (time.time(), task_id),
            )
            if row is None:
                return False
            await uncount_use(transaction, row[0], PAID_KIND, row[1])
            await _free_pressed_button(transaction, task_id)
            return True

    async def fail_chat(self, chat_id: int) -> int:
        """Close (and refund) every unfinished task of a chat nobody can deliver to any more."""
        rows = await self._db.fetch_all(
            "SELECT task_id FROM mj_tasks WHERE chat_id = ? AND state IN ('pending', 'delivering')", (chat_id,)
        )
        return sum([await self.fail_and_refund(row["task_id"]) for row in rows])

    async def resume_interrupted_deliveries(self) -> int:
        """At start-up: a delivery claimed by a process that died may not have been sent; deliver it again.

        (With one process per database every 'delivering' row is such a leftover; replicas sharing a
        database would need an owner and a lease here.)
        """
        return await self._db.execute("UPDATE mj_tasks SET state = 'pending' WHERE state = 'delivering'")

    async def task_of_result(self, chat_id: int, result_message_id: int) -> MjTaskRow | None:
        row = await self._db.fetch_one(
            "SELECT * FROM mj_tasks WHERE chat_id = ? AND result_message_id = ?", (chat_id, result_message_id)
        )
        return MjTaskRow.from_row(row) if row else None

    async def save_buttons(self, task_id: str, buttons: Sequence[tuple[str, str]]) -> list[MjButtonRow]:
        """Store (customId, label) pairs under fresh short keys for callback_data."""
        rows = [
            MjButtonRow(secrets.token_urlsafe(9), task_id, custom_id, label, False) for custom_id, label in buttons
        ]
        async with self._db.transaction() as transaction:
            await transaction.executemany(
                "INSERT INTO mj_buttons (key, task_id, custom_id, label) VALUES (?, ?, ?, ?)",
                [(row.key, row.task_id, row.custom_id, row.label) for row in rows],
            )
        return rows

    async def button(self, key: str) -> MjButtonRow | None:
        row = await self._db.fetch_one("SELECT * FROM mj_buttons WHERE key = ?", (key,))
        if row is None:
            return None
        return MjButtonRow(row["key"], row["task_id"], row["custom_id"], row["label"], bool(row["busy"]))

    async def claim_button(self, key: str) -> bool:
        """Mark a button's job as running; False when it already is (a second press submits nothing)."""
        return await self._db.execute("UPDATE mj_buttons SET busy = 1 WHERE key = ? AND busy = 0", (key,)) == 1

    async def free_button(self, key: str) -> None:
        await self._db.execute("UPDATE mj_buttons SET busy = 0 WHERE key = ?", (key,))

    async def prune_finished(self, before: float) -> int:
        """Forget tasks that ended before `before` (unix seconds), with the buttons under their pictures; returns
        how many tasks went."""
        async with self._db.transaction() as transaction:
            await transaction.execute(
                """
                DELETE FROM mj_buttons WHERE task_id IN (
                    SELECT task_id FROM mj_tasks WHERE state IN ('done', 'failed') AND finished_at < ?
                )
                """,
                (before,),
            )
            return await transaction.execute(
                "DELETE FROM mj_tasks WHERE state IN ('done', 'failed') AND finished_at < ?", (before,)
            )


async def _free_pressed_button(transaction: Transaction, task_id: str) -> None:
    await transaction.execute(
        "UPDATE mj_buttons SET busy = 0 WHERE key = (SELECT pressed_button FROM mj_tasks WHERE task_id = ?)",
        (task_id,),
    )
