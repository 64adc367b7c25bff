"""MidjourneyJobs.press and .imagine as the one service call each is, end to end below the messenger: a real
SQLite database, real Turns (Quotas and InFlight), the real tracker, and fakes for the gateway and the view.
A button is refused before anyone's turn, claimed before the presser's turn, acknowledged inside it, and free
again (nothing charged) when anything after the claim fails."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from bot.clients.midjourney import Midjourney
from bot.clients.midjourney_errors import MidjourneyUnavailable
from bot.config import Settings
from bot.inflight import InFlight
from bot.media.images import Picture, PictureTooLarge
from bot.midjourney.jobs import STALE_BUTTON, ButtonBusy, MidjourneyJobs, Origin
from bot.midjourney.prompts import PromptWriter
from bot.midjourney.tracker import MidjourneyTracker, NotShown, StatusMessage, TaskView
from bot.quotas import Quotas
from bot.turns import Turn, TurnRule, Turns
from storage import Database, UsageRepository
from storage.midjourney import MidjourneyRepository, MjTaskRow, NewMjTask
from testkit.media import make_jpeg, make_png

DAY = "2026-02-03"
OWNER, PRESSER = 5, 7  # who made the picture, and who presses its button
GROUP = -100
PICTURE_MESSAGE = 77  # the message carrying the delivered grid
PARENT_PROMPT = "a lighthouse at dawn"
UPSCALE = "MJ::JOB::upsample::2::h"
JOB = TurnRule("imagine", "Midjourney request")
ORIGIN = Origin(user_id=PRESSER, chat_id=GROUP, thread_id=0, message_id=PICTURE_MESSAGE)


class FakeMidjourney:
    """The gateway's submissions: each answers the task id set by the test, or raises the error set instead."""

    def __init__(self) -> None:
        self.action_answer: str | Exception = "child"
        self.imagine_answer: str | Exception = "fresh"
        self.calls: list[tuple[Any, ...]] = []

    async def action(self, task_id: str, custom_id: str) -> str:
        self.calls.append(("action", task_id, custom_id))
        return _answer(self.action_answer)

    async def imagine(self, prompt: str, images: Sequence[str] = ()) -> str:
        self.calls.append(("imagine", prompt, tuple(images)))
        return _answer(self.imagine_answer)


def _answer(answer: str | Exception) -> str:
    if isinstance(answer, Exception):
        raise answer
    return answer


class EnglishAlready:
    """The prompt writer for prompts in English: nothing to rewrite."""

    async def english(self, prompt: str) -> str | None:
        return None


class FakeView:
    """The view as jobs reach it (the tracker's announce): every call recorded; `refusing` makes it NotShown."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.refusing = False

    async def announce(self, task: MjTaskRow | NewMjTask, label: str | None) -> StatusMessage:
        self.calls.append(("announce", task.task_id, label))
        if self.refusing:
            raise NotShown("announce")
        return StatusMessage(900, is_photo=False)


@dataclass
class Bench:
    database: Database
    inflight: InFlight
    turns: Turns
    client: FakeMidjourney
    view: FakeView
    jobs: MidjourneyJobs
    key: str  # the U2 button under the owner's delivered grid
    started: list[Turn] = field(default_factory=list)  # the presser's turns, as they were entered

    @property
    def repo(self) -> MidjourneyRepository:
        return MidjourneyRepository(self.database)

    def presser_turn(self) -> AbstractAsyncContextManager[Turn]:
        """The turn factory press gets: the presser's real turn, recording that it was entered."""

        @asynccontextmanager
        async def turn() -> AsyncIterator[Turn]:
            async with self.turns.run(PRESSER, JOB) as running:
                self.started.append(running)
                yield running

        return turn()

    async def press(self, acknowledge: Callable[[str], Awaitable[object]] | None = None) -> str:
        return await self.jobs.press(self.key, ORIGIN, self.presser_turn, acknowledge or _ignore)

    async def charged(self, user: int) -> int:
        """The user's counted imagine uses that day (not reservations)."""
        row = await self.database.fetch_one(
            "SELECT count FROM usage WHERE user_id = ? AND kind = 'imagine' AND day = ?", (user, DAY)
        )
        return int(row[0]) if row else 0

    async def reservations(self) -> int:
        return len(await self.database.fetch_all("SELECT id FROM reservations"))

    async def busy(self) -> bool:
        button = await self.repo.button(self.key)
        assert button is not None
        return button.busy


async def _ignore(label: str) -> None:
    return None


@pytest.fixture
async def bench(any_database: Database) -> AsyncIterator[Bench]:
    """The owner's grid delivered in a group as PICTURE_MESSAGE, with its U2 button saved; the presser has used
    nothing today."""
    database = any_database
    usage = UsageRepository(database)
    repo = MidjourneyRepository(database)
    outcome = await usage.reserve(OWNER, "imagine", DAY, 10)
    assert outcome.reservation_id is not None
    grid = NewMjTask("grid", chat_id=GROUP, thread_id=0, request_message_id=1, requested_by=OWNER,
                     kind="imagine", prompt=PARENT_PROMPT)  # fmt: skip
    await repo.create_charged(grid, outcome.reservation_id, DAY)
    assert await repo.claim_delivery("grid")
    await repo.mark_delivered("grid", PICTURE_MESSAGE)
    [button] = await repo.save_buttons("grid", [(UPSCALE, "U2")])

    settings = Settings(BOT_TOKEN="1:x", API_KEY="k", QUOTA_IMAGINE=10)
    inflight = InFlight()
    turns = Turns(Quotas(usage, settings, today=lambda: DAY), inflight)
    client, view = FakeMidjourney(), FakeView()
    tracker = MidjourneyTracker(cast(Midjourney, client), repo, cast(TaskView, view), settings)
    jobs = MidjourneyJobs(cast(Midjourney, client), repo, tracker, cast(PromptWriter, EnglishAlready()))
    yield Bench(database, inflight, turns, client, view, jobs, button.key)


# --- refused before any turn -------------------------------------------------------------------------------


async def test_a_key_nobody_issued_is_stale_and_starts_no_turn(bench: Bench) -> None:
    """A forged or forgotten key: STALE_BUTTON, before the presser's turn (nothing reserved, nothing sent)."""
    with pytest.raises(type(STALE_BUTTON)) as refused:
        await bench.jobs.press("forged-key", ORIGIN, bench.presser_turn, _ignore)
    assert refused.value is STALE_BUTTON
    assert bench.started == []
    assert bench.client.calls == []
    assert await bench.reservations() == 0


async def test_a_button_whose_job_runs_is_busy_and_starts_no_turn(bench: Bench) -> None:
    """Pressed again while its job runs: ButtonBusy naming the button, no second turn, nothing submitted."""
    await bench.press()
    assert await bench.busy()

    with pytest.raises(ButtonBusy) as refused:
        await bench.press()
    assert "U2" in str(refused.value.user_message)
    assert len(bench.started) == 1
    assert len(bench.client.calls) == 1
    assert await bench.charged(PRESSER) == 1


# --- a good press ------------------------------------------------------------------------------------------


async def test_a_press_submits_charges_tracks_and_announces(bench: Bench) -> None:
    """The press acknowledged once with the label inside the presser's turn; the action sent for the button's
    task and customId; the turn settled as submitted; the task pending with its button, the parent's prompt and
    the presser charged once; the tracker's announcement shown with the label and its message stored."""
    acknowledged: list[tuple[str, bool, int]] = []

    async def acknowledge(label: str) -> None:
        acknowledged.append((label, bench.inflight.busy(PRESSER), len(bench.started)))

    assert await bench.press(acknowledge) == "child"

    assert acknowledged == [("U2", True, 1)]
    assert bench.client.calls == [("action", "grid", UPSCALE)]
    [turn] = bench.started
    assert turn.settled_as == "submitted"
    [row] = await bench.repo.pending()
    assert (row.task_id, row.kind, row.pressed_button, row.prompt) == ("child", "action", bench.key, PARENT_PROMPT)
    assert (row.chat_id, row.request_message_id, row.requested_by, row.charged_user, row.charge_day) == (
        GROUP, PICTURE_MESSAGE, PRESSER, PRESSER, DAY,
    )  # fmt: skip
    assert await bench.charged(PRESSER) == 1
    assert await bench.charged(OWNER) == 1  # the owner paid for the grid only
    assert await bench.reservations() == 0
    assert await bench.busy()
    assert bench.view.calls == [("announce", "child", "U2")]
    assert (row.status_message_id, row.shown_status, row.shown_progress) == (900, "", 0)


async def test_a_press_whose_announcement_is_refused_still_counts(bench: Bench) -> None:
    """The messenger refusing the status message does not undo a submitted job: it stays tracked and charged,
    and its button stays busy."""
    bench.view.refusing = True
    assert await bench.press() == "child"
    assert [row.task_id for row in await bench.repo.pending()] == ["child"]
    assert await bench.charged(PRESSER) == 1
    assert await bench.busy()


async def test_a_cancel_after_the_gateway_accepted_stops_nothing(bench: Bench) -> None:
    """Once the gateway accepted the job it runs whatever happens: a /cancel while the job is being announced
    finds nothing to stop, and the job stays charged, tracked and its button busy (never "stopped, nothing
    charged" for a picture that then arrives and is paid for)."""
    announcing, release = asyncio.Event(), asyncio.Event()
    announce = bench.view.announce

    async def slow_announce(task: MjTaskRow | NewMjTask, label: str | None) -> StatusMessage:
        announcing.set()
        await release.wait()
        return await announce(task, label)

    bench.view.announce = slow_announce  # type: ignore[method-assign]
    pressing = asyncio.create_task(bench.press())
    await announcing.wait()
    assert bench.inflight.cancel(PRESSER) is None
    release.set()

    assert await pressing == "child"
    assert [row.task_id for row in await bench.repo.pending()] == ["child"]
    assert await bench.charged(PRESSER) == 1
    assert await bench.busy()


async def test_a_job_stored_keeps_its_button_busy_whatever_fails_after(bench: Bench) -> None:
    """Something failing after the job was stored and charged (here the announcement, unexpectedly): the error
    comes out, but the button stays busy, since its job runs: a second press must not start it again."""

    async def broken_announce(task: MjTaskRow | NewMjTask, label: str | None) -> StatusMessage:
        raise RuntimeError("the view broke")

    bench.view.announce = broken_announce  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await bench.press()
    assert [row.task_id for row in await bench.repo.pending()] == ["child"]
    assert await bench.charged(PRESSER) == 1
    assert await bench.busy()


# --- failures after the claim ------------------------------------------------------------------------------


async def test_a_failed_submission_frees_the_button_and_charges_nothing(bench: Bench) -> None:
    """The gateway failing after the press was acknowledged: the error comes out, the turn gives the reservation
    back, nothing is tracked, and the button works again (a second press goes through)."""
    bench.client.action_answer = MidjourneyUnavailable("timeout")
    acknowledged: list[str] = []

    async def acknowledge(label: str) -> None:
        acknowledged.append(label)

    with pytest.raises(MidjourneyUnavailable):
        await bench.press(acknowledge)

    assert acknowledged == ["U2"]
    assert bench.started[0].settled_as is None
    assert not await bench.busy()
    assert await bench.charged(PRESSER) == 0
    assert await bench.reservations() == 0
    assert await bench.repo.pending() == []

    bench.client.action_answer = "child"
    assert await bench.press() == "child"
    assert await bench.charged(PRESSER) == 1


async def test_a_failed_acknowledgement_frees_the_button_and_charges_nothing(bench: Bench) -> None:
    """Answering the press failing (the query too old): nothing submitted, nothing charged, the button free."""

    async def acknowledge(label: str) -> None:
        raise RuntimeError("query is too old")

    with pytest.raises(RuntimeError):
        await bench.press(acknowledge)

    assert len(bench.started) == 1
    assert bench.client.calls == []
    assert not await bench.busy()
    assert await bench.charged(PRESSER) == 0
    assert await bench.reservations() == 0


# --- imagine with reference pictures -----------------------------------------------------------------------


async def test_references_are_loaded_inside_the_turn_and_sent_as_data_urls(bench: Bench) -> None:
    """The loader runs once, while the turn holds the actor's place and its reservation; its pictures reach the
    gateway as data URLs typed by their MIME type; the job is charged and tracked."""
    png, jpeg = make_png(), make_jpeg()
    seen: list[tuple[bool, int]] = []

    async def references() -> list[Picture]:
        seen.append((bench.inflight.busy(PRESSER), await bench.reservations()))
        return [Picture(png, "image/png"), Picture(jpeg, "image/jpeg")]

    async with bench.turns.run(PRESSER, JOB) as turn:
        assert await bench.jobs.imagine(turn, ORIGIN, "a red square", references) == "fresh"

    assert seen == [(True, 1)]
    urls = (
        "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
    )
    assert bench.client.calls == [("imagine", "a red square", urls)]
    assert turn.settled_as == "submitted"
    assert await bench.charged(PRESSER) == 1
    [row] = await bench.repo.pending()
    assert (row.task_id, row.kind, row.prompt, row.pressed_button) == ("fresh", "imagine", "a red square", None)
    assert bench.view.calls == [("announce", "fresh", None)]


async def test_a_reference_refused_by_the_loader_submits_and_charges_nothing(bench: Bench) -> None:
    """A loader refusing its picture (too large) inside the turn: nothing reaches the gateway, the use is given
    back."""

    async def references() -> list[Picture]:
        raise PictureTooLarge(1000)

    with pytest.raises(PictureTooLarge):
        async with bench.turns.run(PRESSER, JOB) as turn:
            await bench.jobs.imagine(turn, ORIGIN, "a red square", references)

    assert bench.client.calls == []
    assert await bench.charged(PRESSER) == 0
    assert await bench.reservations() == 0
    assert await bench.repo.pending() == []
