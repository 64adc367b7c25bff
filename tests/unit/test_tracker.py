"""The Midjourney tracker: what each answer of the gateway means for a task (decide, a pure function), and the
poller carrying it out against a real SQLite database, a fake gateway and a fake view: pictures delivered once,
endings refunded once, progress shown when it changed, dialogs answered, and a stop that lets a delivery finish."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from bot.clients.midjourney import Midjourney
from bot.clients.midjourney_errors import MidjourneyRejected, MidjourneyTooLarge, MidjourneyUnavailable
from bot.clients.midjourney_tasks import MjTask
from bot.config import Settings
from bot.midjourney.tracker import (
    DELIVERY_ATTEMPTS,
    MODAL_ANSWERED,
    AnswerDialog,
    ChatUnreachable,
    Deliver,
    End,
    Ending,
    MidjourneyTracker,
    NotShown,
    ShowProgress,
    StatusMessage,
    decide,
    shown_status,
)
from storage import Database, UsageRepository
from storage.midjourney import MidjourneyRepository, MjButtonRow, MjTaskRow, NewMjTask
from testkit.media import make_png

DAY = "2026-02-03"
TIMEOUT = 600.0
PICTURE_URL = "https://cdn.example/grid.png"
PREVIEW_URL = "https://cdn.example/preview.png"
STATUS_MESSAGE = 10  # the status message every test task was announced with
BUTTONS = [
    {"customId": "MJ::JOB::upsample::1::h", "label": "U1", "type": 2},
    {"customId": "MJ::JOB::reroll::0::h::SOLO", "emoji": "🔄", "label": "", "type": 2},
]


# --- fakes -------------------------------------------------------------------------------------------------


class FakeMidjourney:
    """The gateway as the tracker uses it: answers set by the test (task JSON as the gateway sends it), every call
    recorded."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.list_error: Exception | None = None
        self.pictures: dict[str, bytes | Exception] = {}
        self.modal_answer: str | Exception = ""
        self.calls: list[tuple[Any, ...]] = []

    async def list(self, task_ids: Sequence[str]) -> list[MjTask]:
        self.calls.append(("list", tuple(task_ids)))
        if self.list_error is not None:
            raise self.list_error
        return [MjTask.from_json(self.tasks[task_id]) for task_id in task_ids if task_id in self.tasks]

    async def download(self, url: str) -> bytes:
        self.calls.append(("download", url))
        answer = self.pictures[url]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def modal(self, task_id: str, prompt: str) -> str:
        self.calls.append(("modal", task_id, prompt))
        if isinstance(self.modal_answer, Exception):
            raise self.modal_answer
        return self.modal_answer

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


class FakeView:
    """A TaskView recording every call; it refuses (NotShown) the methods named in `refusing`, finds the chats in
    `unreachable` closed to the bot (ChatUnreachable), and, given a `gate`, holds each delivery until it opens."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.ready = True
        self.refusing: set[str] = set()
        self.unreachable: set[int] = set()
        self.progress_message: StatusMessage | None = None  # None: the status message stays as it is
        self.gate: asyncio.Event | None = None
        self.delivering = asyncio.Event()
        self._message_ids = iter(range(500, 10_000))

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]

    def _trouble(self, method: str, chat_id: int) -> None:
        if chat_id in self.unreachable:
            raise ChatUnreachable(chat_id)
        if method in self.refusing:
            raise NotShown(method)

    async def announce(self, task: MjTaskRow | NewMjTask, label: str | None) -> StatusMessage:
        self.calls.append(("announce", task.task_id, label))
        self._trouble("announce", task.chat_id)
        return StatusMessage(next(self._message_ids), is_photo=False)

    def ready_to_show(self, chat_id: int) -> bool:
        self.calls.append(("ready_to_show", chat_id))
        return self.ready

    async def show_progress(self, row: MjTaskRow, task: MjTask, preview: bytes | None) -> StatusMessage:
        self.calls.append(("show_progress", row.task_id, task.status, task.progress, preview))
        self._trouble("show_progress", row.chat_id)
        if self.progress_message is not None:
            return self.progress_message
        assert row.status_message_id is not None
        return StatusMessage(row.status_message_id, row.shown_image)

    async def deliver(self, row: MjTaskRow, picture: bytes, buttons: Sequence[MjButtonRow]) -> int:
        self.calls.append(("deliver", row.task_id, picture, tuple(buttons)))
        self._trouble("deliver", row.chat_id)
        if self.gate is not None:
            self.delivering.set()
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.calls.append(("deliver cancelled", row.task_id))
                raise
        message_id = next(self._message_ids)
        self.calls.append(("delivered", row.task_id, message_id))
        return message_id

    async def remove_status(self, row: MjTaskRow) -> None:
        self.calls.append(("remove_status", row.task_id, row.status_message_id))
        self._trouble("remove_status", row.chat_id)

    async def report_ending(self, row: MjTaskRow, ending: Ending, detail: object) -> None:
        self.calls.append(("report_ending", row.task_id, ending, detail))
        self._trouble("report_ending", row.chat_id)


# --- the world ---------------------------------------------------------------------------------------------


@pytest.fixture
def database(any_database: Database) -> Database:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_database


@pytest.fixture
def client() -> FakeMidjourney:
    return FakeMidjourney()


@pytest.fixture
def view() -> FakeView:
    return FakeView()


def _tracker(database: Database, client: FakeMidjourney, view: FakeView, **settings: Any) -> MidjourneyTracker:
    config = Settings(BOT_TOKEN="1:x", API_KEY="k", MJ_TIMEOUT=TIMEOUT, MJ_POLL_INTERVAL=3600, **settings)
    return MidjourneyTracker(cast(Midjourney, client), MidjourneyRepository(database), view, config)


@pytest.fixture
def tracker(database: Database, client: FakeMidjourney, view: FakeView) -> MidjourneyTracker:
    return _tracker(database, client, view)


async def _create(
    database: Database, task_id: str, user: int = 5, chat: int | None = None, prompt: str = "a cat"
) -> None:
    """A task the gateway accepted, paid from `user`'s imagine quota and announced (its status message shows it
    waiting), as MidjourneyJobs leaves it."""
    outcome = await UsageRepository(database).reserve(user, "imagine", DAY, 10)
    assert outcome.reservation_id is not None
    task = NewMjTask(task_id, chat_id=user if chat is None else chat, thread_id=0, request_message_id=1,
                     requested_by=user, kind="imagine", prompt=prompt)  # fmt: skip
    repo = MidjourneyRepository(database)
    await repo.create_charged(task, outcome.reservation_id, DAY)
    await repo.set_status_message(task_id, STATUS_MESSAGE, is_photo=False)
    await repo.record_shown(task_id, "", 0)


async def _row(database: Database, task_id: str) -> MjTaskRow:
    row = await database.fetch_one("SELECT * FROM mj_tasks WHERE task_id = ?", (task_id,))
    assert row is not None, f"no task {task_id}"
    return MjTaskRow.from_row(row)


async def _used(database: Database, user: int = 5) -> int:
    """The user's imagine uses that day, reservations included: what the limit is checked against."""
    return (await UsageRepository(database).taken_on(user, DAY)).get("imagine", 0)


def _gateway_task(task_id: str, status: str, progress: str = "", **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "action": "IMAGINE", "status": status, "progress": progress, **fields}


# --- decide ------------------------------------------------------------------------------------------------

CREATED = 1_000_000.0


def _stored(shown: str = "", progress: int = 0, created_at: float = CREATED) -> MjTaskRow:
    return MjTaskRow(
        task_id="t1", chat_id=5, thread_id=0, request_message_id=1, status_message_id=STATUS_MESSAGE,
        requested_by=5, charged_user=5, charge_day=DAY, kind="imagine", prompt="a cat", pressed_button=None,
        state="pending", shown_status=shown, shown_progress=progress, shown_image=False, created_at=created_at,
    )  # fmt: skip


def _answer(status: str, progress: str = "", **fields: Any) -> MjTask:
    return MjTask.from_json(_gateway_task("t1", status, progress, **fields))


SOON = CREATED + 5
LATE = CREATED + TIMEOUT + 1


def test_a_finished_task_is_delivered_even_past_the_timeout() -> None:
    """SUCCESS means Deliver, whenever it arrives: a finished picture is never thrown away as timed out."""
    task = _answer("SUCCESS", "100%", imageUrl=PICTURE_URL)
    assert decide(_stored(), task, SOON, TIMEOUT) == Deliver(task)
    assert decide(_stored(), task, LATE, TIMEOUT) == Deliver(task)


@pytest.mark.parametrize(("status", "reason"), [("FAILURE", "banned prompt"), ("CANCEL", "")])
def test_a_failed_or_cancelled_task_ends_with_its_reason(status: str, reason: str) -> None:
    """FAILURE and CANCEL end the task as FAILED, carrying Midjourney's reason (empty when it gave none)."""
    task = _answer(status, "100%", failReason=reason)
    assert decide(_stored(), task, SOON, TIMEOUT) == End(Ending.FAILED, reason)


@pytest.mark.parametrize("status", [None, "IN_PROGRESS", "NOT_START", "MODAL"])
def test_past_the_timeout_a_task_ends_timed_out(status: str | None) -> None:
    """Past MJ_TIMEOUT an unfinished task ends TIMED_OUT (detail: the timeout), even when the list call failed
    (no answer at all) and even while the gateway still says it runs; before it, it does not."""
    task = None if status is None else _answer(status, "40%")
    assert decide(_stored(), task, LATE, TIMEOUT) == End(Ending.TIMED_OUT, TIMEOUT)
    assert decide(_stored(), task, CREATED + TIMEOUT - 1, TIMEOUT) != End(Ending.TIMED_OUT, TIMEOUT)


def test_no_answer_within_the_timeout_means_nothing_to_do() -> None:
    assert decide(_stored(), None, SOON, TIMEOUT) is None


def test_a_dialog_is_answered_once() -> None:
    """MODAL asks for the dialog to be answered, unless the row says it was already answered."""
    task = _answer("MODAL", "0%")
    assert decide(_stored(), task, SOON, TIMEOUT) == AnswerDialog(task)
    assert decide(_stored(shown=MODAL_ANSWERED), task, SOON, TIMEOUT) is None


def test_progress_is_shown_only_when_it_changed() -> None:
    """The same (status, progress) as last shown is nothing to do; a new progress or a new status is shown."""
    shown = _stored(shown="IN_PROGRESS", progress=40)
    assert decide(shown, _answer("IN_PROGRESS", "40%"), SOON, TIMEOUT) is None
    moved = _answer("IN_PROGRESS", "55%")
    assert decide(shown, moved, SOON, TIMEOUT) == ShowProgress(moved)
    started = _answer("IN_PROGRESS", "0%")
    assert decide(_stored(), started, SOON, TIMEOUT) == ShowProgress(started)


@pytest.mark.parametrize("status", ["", "NOT_START", "SUBMITTED"])
def test_every_way_of_waiting_looks_the_same(status: str) -> None:
    """ "", NOT_START and SUBMITTED are all shown as waiting: a row showing one of them sees no change in another,
    while a row never shown (progress -1, as stored) is shown once."""
    task = _answer(status, "0%")
    assert shown_status(task) == ""
    assert decide(_stored(shown="", progress=0), task, SOON, TIMEOUT) is None
    assert decide(_stored(shown="", progress=-1), task, SOON, TIMEOUT) == ShowProgress(task)


# --- the poller: delivery ----------------------------------------------------------------------------------


async def test_a_finished_task_is_delivered_exactly_once(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """A SUCCESS is delivered once across two polls: the picture with its buttons (saved, keyed, free), the row
    marked done with the message that carries it, the status message removed, the use kept."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "SUCCESS", "100%", imageUrl=PICTURE_URL, buttons=BUTTONS)
    client.pictures[PICTURE_URL] = make_png()

    await tracker.poll_once()
    await tracker.poll_once()

    [(_, task_id, picture, buttons)] = view.called("deliver")
    assert (task_id, picture) == ("t1", make_png())
    assert [(button.custom_id, button.label) for button in buttons] == [
        ("MJ::JOB::upsample::1::h", "U1"),
        ("MJ::JOB::reroll::0::h::SOLO", "🔄"),
    ]
    repo = MidjourneyRepository(database)
    for button in buttons:
        assert await repo.button(button.key) == MjButtonRow(
            button.key, "t1", button.custom_id, button.label, False
        )
    [(_, _, message_id)] = view.called("delivered")
    assert (await _row(database, "t1")).state == "done"
    delivered = await repo.task_of_result(5, message_id)
    assert delivered is not None and delivered.task_id == "t1"
    assert view.called("remove_status") == [("remove_status", "t1", STATUS_MESSAGE)]
    assert view.called("report_ending") == []
    assert await _used(database) == 1


@pytest.mark.parametrize("cause", ["download fails", "messenger refuses"])
async def test_a_picture_that_never_arrives_is_given_up_after_its_attempts(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker, cause: str
) -> None:
    """A finished picture that fails to arrive (its download fails, or the messenger refuses it) stays pending
    for DELIVERY_ATTEMPTS - 1 polls, then ends UNDELIVERABLE at the next, reported and refunded."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "SUCCESS", "100%", imageUrl=PICTURE_URL)
    if cause == "download fails":
        client.pictures[PICTURE_URL] = MidjourneyUnavailable("image download failed")
    else:
        client.pictures[PICTURE_URL] = make_png()
        view.refusing.add("deliver")

    for _ in range(DELIVERY_ATTEMPTS - 1):
        await tracker.poll_once()
        assert (await _row(database, "t1")).state == "pending"
        assert view.called("report_ending") == []
        assert await _used(database) == 1

    await tracker.poll_once()
    assert len(client.called("download")) == DELIVERY_ATTEMPTS
    assert view.called("report_ending") == [("report_ending", "t1", Ending.UNDELIVERABLE, "")]
    assert (await _row(database, "t1")).state == "failed"
    assert await _used(database) == 0


async def test_a_picture_that_arrives_after_a_few_failures_is_delivered(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """Fewer failed attempts than DELIVERY_ATTEMPTS do not end the task: once the picture downloads, it arrives."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "SUCCESS", "100%", imageUrl=PICTURE_URL)
    client.pictures[PICTURE_URL] = MidjourneyUnavailable("image download failed")
    for _ in range(DELIVERY_ATTEMPTS - 1):
        await tracker.poll_once()
    client.pictures[PICTURE_URL] = make_png()
    await tracker.poll_once()

    assert len(view.called("delivered")) == 1
    assert (await _row(database, "t1")).state == "done"
    assert view.called("report_ending") == []
    assert await _used(database) == 1


async def test_a_delivered_picture_is_never_reported_undeliverable(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """The last allowed attempt delivers the picture but its status message cannot be removed (NotShown): the
    task stays done and paid for, and nobody is told it could not be delivered."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "SUCCESS", "100%", imageUrl=PICTURE_URL)
    client.pictures[PICTURE_URL] = MidjourneyUnavailable("image download failed")
    for _ in range(DELIVERY_ATTEMPTS - 1):
        await tracker.poll_once()
    client.pictures[PICTURE_URL] = make_png()
    view.refusing.add("remove_status")
    await tracker.poll_once()

    assert len(view.called("delivered")) == 1
    assert (await _row(database, "t1")).state == "done"
    assert view.called("report_ending") == []
    assert await _used(database) == 1


@pytest.mark.parametrize("how", ["over MAX_DOWNLOAD_MB", "over MAX_IMAGE_PIXELS"])
async def test_a_picture_too_large_ends_at_once(
    database: Database, client: FakeMidjourney, view: FakeView, how: str
) -> None:
    """A download past the size cap (MidjourneyTooLarge), or a picture whose header promises more pixels than
    the bot decodes, ends TOO_LARGE at the first poll, refunded, without trying again."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "SUCCESS", "100%", imageUrl=PICTURE_URL)
    if how == "over MAX_DOWNLOAD_MB":
        client.pictures[PICTURE_URL] = MidjourneyTooLarge("image over MAX_DOWNLOAD_MB")
        tracker = _tracker(database, client, view)
    else:
        client.pictures[PICTURE_URL] = make_png(64, 48)
        tracker = _tracker(database, client, view, MAX_IMAGE_PIXELS=1000)

    await tracker.poll_once()

    assert view.called("report_ending") == [("report_ending", "t1", Ending.TOO_LARGE, "")]
    assert view.called("deliver") == []
    assert (await _row(database, "t1")).state == "failed"
    assert await _used(database) == 0


# --- the poller: endings -----------------------------------------------------------------------------------


async def test_a_failed_task_is_refunded_and_reported_once(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """FAILURE: the use given back once and the reason told once, across two polls; the payer's other task
    keeps its use."""
    await _create(database, "t1")
    await _create(database, "t2")
    client.tasks["t1"] = _gateway_task("t1", "FAILURE", "100%", failReason="banned prompt")
    client.tasks["t2"] = _gateway_task("t2", "IN_PROGRESS", "0%")
    assert await _used(database) == 2

    await tracker.poll_once()
    await tracker.poll_once()

    assert view.called("report_ending") == [("report_ending", "t1", Ending.FAILED, "banned prompt")]
    assert (await _row(database, "t1")).state == "failed"
    assert (await _row(database, "t2")).state == "pending"
    assert await _used(database) == 1


async def test_a_task_past_the_timeout_is_refunded_while_the_gateway_is_down(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """With the list call failing, a task older than MJ_TIMEOUT still ends TIMED_OUT and is refunded; a young
    one waits for the next poll."""
    await _create(database, "old", user=1)
    await _create(database, "young", user=2)
    await database.execute(
        "UPDATE mj_tasks SET created_at = created_at - ? WHERE task_id = 'old'", (TIMEOUT + 60,)
    )
    client.list_error = MidjourneyUnavailable("timeout")

    await tracker.poll_once()

    assert client.called("list") == [("list", ("old", "young"))]
    assert view.called("report_ending") == [("report_ending", "old", Ending.TIMED_OUT, TIMEOUT)]
    assert await _used(database, 1) == 0
    assert (await _row(database, "young")).state == "pending"
    assert await _used(database, 2) == 1


@pytest.mark.parametrize("trigger", ["IN_PROGRESS", "SUCCESS"])
async def test_an_unreachable_chat_closes_and_refunds_all_its_tasks(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker, trigger: str
) -> None:
    """When the view finds a chat closed to the bot (showing progress, or delivering a claimed picture), every
    unfinished task of that chat is closed and refunded, the quiet ones too; other chats are untouched."""
    group, other = -100, 3
    await _create(database, "a1", user=1, chat=group)
    await _create(database, "a2", user=2, chat=group)  # waiting, unchanged: no decision of its own
    await _create(database, "b1", user=3, chat=other)
    client.tasks["a1"] = _gateway_task("a1", trigger, "30%", imageUrl=PICTURE_URL)
    client.tasks["a2"] = _gateway_task("a2", "SUBMITTED", "0%")
    client.tasks["b1"] = _gateway_task("b1", "IN_PROGRESS", "30%")
    client.pictures[PICTURE_URL] = make_png()
    view.unreachable.add(group)

    await tracker.poll_once()

    assert [(await _row(database, task)).state for task in ("a1", "a2", "b1")] == ["failed", "failed", "pending"]
    assert [await _used(database, user) for user in (1, 2, 3)] == [0, 0, 1]
    assert view.called("report_ending") == []  # nobody there to tell
    assert (await _row(database, "b1")).shown_progress == 30


# --- the poller: progress and dialogs ----------------------------------------------------------------------


async def test_progress_is_shown_when_the_view_is_ready_and_it_changed(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """Not while the view is not ready (nothing recorded, so it is shown later); then once per change, with a
    preview when the gateway has one; a new status message the view returns is stored."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "IN_PROGRESS", "20%")

    view.ready = False
    await tracker.poll_once()
    assert view.called("show_progress") == []
    row = await _row(database, "t1")
    assert (row.shown_status, row.shown_progress) == ("", 0)

    view.ready = True
    view.progress_message = StatusMessage(11, is_photo=False)  # the old one was gone: a new one was sent
    await tracker.poll_once()
    await tracker.poll_once()  # unchanged: nothing to show
    assert view.called("show_progress") == [("show_progress", "t1", "IN_PROGRESS", 20, None)]
    row = await _row(database, "t1")
    assert (row.shown_status, row.shown_progress, row.status_message_id, row.shown_image) == (
        "IN_PROGRESS", 20, 11, False,
    )  # fmt: skip

    client.tasks["t1"] = _gateway_task("t1", "IN_PROGRESS", "60%", imageUrl=PREVIEW_URL)
    client.pictures[PREVIEW_URL] = make_png(32, 32)
    view.progress_message = StatusMessage(12, is_photo=True)
    await tracker.poll_once()
    assert view.called("show_progress")[-1] == ("show_progress", "t1", "IN_PROGRESS", 60, make_png(32, 32))
    row = await _row(database, "t1")
    assert (row.shown_progress, row.status_message_id, row.shown_image) == (60, 12, True)


async def test_progress_the_messenger_refused_is_shown_again(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """A refused progress update (NotShown) is not recorded as shown, so the next poll shows it again."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "IN_PROGRESS", "20%")
    view.refusing.add("show_progress")
    await tracker.poll_once()
    assert (await _row(database, "t1")).shown_progress == 0

    view.refusing.clear()
    await tracker.poll_once()
    assert len(view.called("show_progress")) == 2
    assert (await _row(database, "t1")).shown_progress == 20


async def test_a_dialog_is_answered_with_the_prompt_and_followed_under_its_new_id(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """A MODAL task gets the row's prompt through the client's modal call; the task continues under the id the
    gateway answers, marked as answered, and the next poll asks about that id."""
    await _create(database, "t1", prompt="a lighthouse at dawn")
    client.tasks["t1"] = _gateway_task("t1", "MODAL", "0%")
    client.modal_answer = "t1-zoomed"
    await tracker.poll_once()

    assert client.called("modal") == [("modal", "t1", "a lighthouse at dawn")]
    row = await _row(database, "t1-zoomed")
    assert (row.state, row.shown_status) == ("pending", MODAL_ANSWERED)
    assert await MidjourneyRepository(database).pending() == [row]

    client.tasks["t1-zoomed"] = _gateway_task("t1-zoomed", "IN_PROGRESS", "10%")
    await tracker.poll_once()
    assert client.called("list")[-1] == ("list", ("t1-zoomed",))
    assert view.called("show_progress") == [("show_progress", "t1-zoomed", "IN_PROGRESS", 10, None)]
    assert len(client.called("modal")) == 1


async def test_a_dialog_without_a_prompt_ends_refunded(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """A MODAL task whose row has no prompt ends DIALOG_WITHOUT_PROMPT, refunded; nothing is sent to the gateway."""
    await _create(database, "t1", prompt="")
    client.tasks["t1"] = _gateway_task("t1", "MODAL", "0%")
    await tracker.poll_once()

    assert client.called("modal") == []
    assert view.called("report_ending") == [("report_ending", "t1", Ending.DIALOG_WITHOUT_PROMPT, "")]
    assert await _used(database) == 0


async def test_a_dialog_the_gateway_refuses_ends_with_its_words(
    database: Database, client: FakeMidjourney, view: FakeView, tracker: MidjourneyTracker
) -> None:
    """A refused dialog answer ends DIALOG_REFUSED, refunded, with the refusal's sentence as the detail."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "MODAL", "0%")
    client.modal_answer = MidjourneyRejected("Midjourney refused this prompt.")
    await tracker.poll_once()

    assert view.called("report_ending") == [
        ("report_ending", "t1", Ending.DIALOG_REFUSED, "Midjourney refused this prompt.")
    ]
    assert await _used(database) == 0


# --- stopping ----------------------------------------------------------------------------------------------


async def _run_ready_callbacks() -> None:
    """Let the event loop run everything that is ready, many times over (no clock involved)."""
    for _ in range(50):
        await asyncio.sleep(0)


async def _delivery_in_progress(database: Database, client: FakeMidjourney, view: FakeView) -> MidjourneyTracker:
    """A started tracker whose first round is delivering a picture, held by the view's gate."""
    await _create(database, "t1")
    client.tasks["t1"] = _gateway_task("t1", "SUCCESS", "100%", imageUrl=PICTURE_URL)
    client.pictures[PICTURE_URL] = make_png()
    view.gate = asyncio.Event()
    tracker = _tracker(database, client, view)
    await tracker.start()
    await view.delivering.wait()
    return tracker


async def test_stop_lets_a_delivery_in_progress_finish_within_the_grace(
    database: Database, client: FakeMidjourney, view: FakeView
) -> None:
    """stop(grace) waits for the round in progress: the held delivery completes and is recorded as delivered."""
    tracker = await _delivery_in_progress(database, client, view)
    assert view.gate is not None
    stopping = asyncio.create_task(tracker.stop(grace=60))
    await _run_ready_callbacks()  # a stop that did not wait would have cancelled the delivery by now
    assert not stopping.done()
    assert view.called("deliver cancelled") == []

    view.gate.set()
    await stopping

    assert view.called("deliver cancelled") == []
    [(_, _, message_id)] = view.called("delivered")
    assert (await _row(database, "t1")).state == "done"
    row = await MidjourneyRepository(database).task_of_result(5, message_id)
    assert row is not None and row.task_id == "t1"


async def test_stop_without_grace_cancels_the_round(
    database: Database, client: FakeMidjourney, view: FakeView
) -> None:
    """stop(0) cancels the held delivery: nothing is recorded as delivered, the task is pending again (to be
    delivered after the restart) and its use is kept."""
    tracker = await _delivery_in_progress(database, client, view)
    async with asyncio.timeout(30):  # only so that a stop that never returns fails instead of hanging
        await tracker.stop(grace=0)

    assert view.called("deliver cancelled") == [("deliver cancelled", "t1")]
    assert view.called("delivered") == []
    assert (await _row(database, "t1")).state == "pending"
    assert await _used(database) == 1
