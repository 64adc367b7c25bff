"""Following Midjourney's tasks, with no aiogram: one list call per interval for every pending task, what each
answer means for its task (decide), and doing it: progress recorded, pictures delivered exactly once, failures
and timeouts refunded, dialogs answered. What a person sees of it is the view's job (TaskView; for Telegram,
bot/midjourney/view.py). Pending tasks live in the database, so tracking resumes after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.clients.midjourney import Midjourney
from bot.clients.midjourney_errors import MidjourneyError, MidjourneyTooLarge
from bot.clients.midjourney_tasks import MjTask
from bot.config import Settings
from bot.core.errors import Refusal, UserFacingError
from bot.media.images import PictureTooLarge, as_telegram_photo
from storage.midjourney import MidjourneyRepository, MjButtonRow, MjTaskRow, NewMjTask

log = logging.getLogger(__name__)

# Ids per list-by-condition call: one call serves every pending task up to this many.
LIST_BATCH = 200
# Status messages of many tasks are shown side by side, but not all at once.
_PARALLEL_TASKS = 16
WAITING = frozenset({"", "NOT_START", "SUBMITTED"})
MODAL_ANSWERED = "MODAL_ANSWERED"
# Polls in a row a finished picture may fail to arrive before it is reported and refunded.
DELIVERY_ATTEMPTS = 5


# --- what an answer means ---------------------------------------------------------------------------------


class Ending(enum.Enum):
    """Why a task ends without its picture (its use is then given back)."""

    FAILED = "failed"  # Midjourney says so (detail: its reason, if any)
    TIMED_OUT = "timed_out"  # detail: the timeout, in seconds
    TOO_LARGE = "too_large"
    UNDELIVERABLE = "undeliverable"  # finished, but it would not arrive, poll after poll
    DIALOG_WITHOUT_PROMPT = "dialog_without_prompt"
    DIALOG_REFUSED = "dialog_refused"  # detail: what the gateway said, in words


@dataclass(frozen=True, slots=True)
class ShowProgress:
    task: MjTask


@dataclass(frozen=True, slots=True)
class Deliver:
    task: MjTask


@dataclass(frozen=True, slots=True)
class End:
    ending: Ending
    detail: object = ""  # a reason or a sentence (str, or a text translated when shown)


@dataclass(frozen=True, slots=True)
class AnswerDialog:
    task: MjTask


Decision = ShowProgress | Deliver | End | AnswerDialog


def shown_status(task: MjTask) -> str:
    """The status as shown: all the ways of waiting look the same."""
    return "" if task.status in WAITING else task.status


def decide(row: MjTaskRow, task: MjTask | None, now: float, timeout: float) -> Decision | None:
    """What the latest answer about a task (None: none this time) means; None when there is nothing to do."""
    if task is not None and task.status == "SUCCESS":
        return Deliver(task)
    if task is not None and task.status in ("FAILURE", "CANCEL"):
        return End(Ending.FAILED, task.fail_reason)
    if now - row.created_at > timeout:
        return End(Ending.TIMED_OUT, timeout)
    if task is None:
        return None
    if task.status == "MODAL":
        return None if row.shown_status == MODAL_ANSWERED else AnswerDialog(task)
    if (shown_status(task), task.progress) == (row.shown_status, row.shown_progress):
        return None
    return ShowProgress(task)


# --- how it is shown ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusMessage:
    message_id: int
    is_photo: bool


class ChatUnreachable(Exception):
    """The bot can no longer write to the task's chat (blocked, removed from the group)."""


class NotShown(Exception):
    """The messenger refused to show something this time; the next poll tries again."""


class TaskView(Protocol):
    """What a person sees of a task. Raises ChatUnreachable or NotShown; speaks the task's own language."""

    async def announce(self, task: MjTaskRow | NewMjTask, label: str | None) -> StatusMessage:
        """The status message of a task the gateway accepted (`label`: the button that started it)."""
        ...

    def ready_to_show(self, chat_id: int) -> bool:
        """Whether progress may be shown in the chat now (messengers limit edits per chat)."""
        ...

    async def show_progress(self, row: MjTaskRow, task: MjTask, preview: bytes | None) -> StatusMessage:
        """The task's progress in its status message (a new one when there is none, or it is gone)."""
        ...

    async def deliver(self, row: MjTaskRow, picture: bytes, buttons: Sequence[MjButtonRow]) -> int:
        """The finished picture with its buttons; the id of the message that carries it."""
        ...

    async def remove_status(self, row: MjTaskRow) -> None: ...

    async def report_ending(self, row: MjTaskRow, ending: Ending, detail: object) -> None:
        """Why the task ended without its picture, and that its use was given back."""
        ...


# --- doing it --------------------------------------------------------------------------------------------


class MidjourneyTracker:
    def __init__(
        self,
        midjourney: Midjourney,
        repository: MidjourneyRepository,
        view: TaskView,
        settings: Settings,
        replica: str | None = None,
    ) -> None:
        self._mj = midjourney
        # With replicas, each tracks the tasks it leases; a lease outlives a few missed polls, no more.
        self._replica = replica
        self._lease_seconds = max(3 * settings.MJ_POLL_INTERVAL, 2.0)
        self._repo = repository
        self._view = view
        self._interval = settings.MJ_POLL_INTERVAL
        self._timeout = settings.MJ_TIMEOUT
        self._max_pixels = settings.MAX_IMAGE_PIXELS
        self._delivery_failures: dict[str, int] = {}
        self._slots = asyncio.Semaphore(_PARALLEL_TASKS)
        self._loop: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        # A replica's interrupted deliveries come back when its leases run out, not when another one starts.
        resumed = await self._repo.resume_interrupted_deliveries() if self._replica is None else 0
        pending = await self._repo.count_pending()
        if pending or resumed:
            log.info("resuming %d midjourney tasks", pending)
        self._loop = asyncio.create_task(self._run(), name="midjourney-tracker")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop polling. The round in progress may finish first, for up to `grace` seconds: a picture cancelled
        between being sent and being recorded as sent would be sent again after the restart."""
        if self._loop is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._loop), grace)
        except TimeoutError:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        self._loop = None

    async def announce(self, task: NewMjTask, label: str | None = None) -> None:
        """Show a task the gateway just accepted; progress updates its status message from then on."""
        status = await self._view.announce(task, label)
        await self._repo.set_status_message(task.task_id, status.message_id, status.is_photo)
        await self._repo.record_shown(task.task_id, "", 0)

    async def chat_closed(self, chat_id: int) -> None:
        """Nobody will see these pictures (the bot was blocked, or left the group): close the chat's tasks and
        give the uses back."""
        closed = await self._repo.fail_chat(chat_id)
        if closed:
            log.info("closed %d midjourney tasks of chat %s: the bot cannot write there", closed, chat_id)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except Exception:  # the poller must outlive any one bad round
                log.exception("midjourney poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def poll_once(self) -> None:
        if self._replica is None:
            rows = await self._repo.pending()
        else:
            rows = await self._repo.lease(self._replica, self._lease_seconds)
        if not rows:
            return
        found: dict[str, MjTask] = {}
        for start in range(0, len(rows), LIST_BATCH):
            batch = [row.task_id for row in rows[start : start + LIST_BATCH]]
            try:
                found.update((task.id, task) for task in await self._mj.list(batch))
            except MidjourneyError:
                # Logged by the client; the next interval asks again. The tasks of this batch still time out
                # (and are refunded) meanwhile: a gateway that keeps failing must not keep the uses.
                continue
        now = time.time()
        decisions = [(row, decide(row, found.get(row.task_id), now, self._timeout)) for row in rows]
        await asyncio.gather(*(self._follow(row, decision) for row, decision in decisions if decision is not None))

    async def _follow(self, row: MjTaskRow, decision: Decision) -> None:
        async with self._slots:
            try:
                await self._carry_out(row, decision)
            except ChatUnreachable:
                await self.chat_closed(row.chat_id)
            except (NotShown, MidjourneyError) as error:
                # Expected trouble (Telegram refusing a picture, the gateway failing): a line, and the next poll.
                log.warning("midjourney task %s: %s", row.task_id, error or type(error).__name__)
            except Exception:  # one task's trouble must not stop the others
                log.exception("midjourney task %s could not be followed", row.task_id)

    async def _carry_out(self, row: MjTaskRow, decision: Decision) -> None:
        match decision:
            case Deliver(task):
                await self._deliver_or_give_up(row, task)
            case End(ending, detail):
                await self._end(row, ending, detail)
            case AnswerDialog(task):
                await self._answer_dialog(row, task)
            case ShowProgress(task):
                await self._show_progress(row, task)

    async def _show_progress(self, row: MjTaskRow, task: MjTask) -> None:
        if not self._view.ready_to_show(row.chat_id):
            return  # shown at a later poll: the stored state still says what was last shown
        preview = await self._preview(task) if task.status == "IN_PROGRESS" else None
        status = await self._view.show_progress(row, task, preview)
        if (status.message_id, status.is_photo) != (row.status_message_id, row.shown_image):
            await self._repo.set_status_message(row.task_id, status.message_id, status.is_photo)
        await self._repo.record_shown(row.task_id, shown_status(task), task.progress)

    async def _preview(self, task: MjTask) -> bytes | None:
        if not task.image_url:
            return None
        try:
            image = await self._mj.download(task.image_url)
            return await asyncio.to_thread(as_telegram_photo, image, self._max_pixels)
        except (MidjourneyError, Refusal):
            return None  # a preview is a nicety; the next poll may get one

    async def _deliver_or_give_up(self, row: MjTaskRow, task: MjTask) -> None:
        """Deliver a finished picture; one that fails to arrive several polls in a row (an image link that
        leads nowhere, a picture Telegram refuses) is reported and refunded rather than tried for ever, and one
        that is too large at once."""
        try:
            await self._deliver(row, task)
        except ChatUnreachable:
            raise
        except (MidjourneyTooLarge, PictureTooLarge):
            self._delivery_failures.pop(row.task_id, None)
            await self._end(row, Ending.TOO_LARGE)
        except Exception:
            failures = self._delivery_failures[row.task_id] = self._delivery_failures.get(row.task_id, 0) + 1
            if failures < DELIVERY_ATTEMPTS:
                raise
            del self._delivery_failures[row.task_id]
            log.warning("midjourney task %s could not be delivered %d times; giving up", row.task_id, failures)
            await self._end(row, Ending.UNDELIVERABLE)
        else:
            self._delivery_failures.pop(row.task_id, None)

    async def _deliver(self, row: MjTaskRow, task: MjTask) -> None:
        if not await self._repo.claim_delivery(row.task_id):
            return  # somebody else (an earlier round still running) is delivering it
        try:
            image = await self._mj.download(task.image_url)
            picture = await asyncio.to_thread(as_telegram_photo, image, self._max_pixels)
            buttons = await self._repo.save_buttons(task.id, [(b.custom_id, b.label) for b in task.buttons])
            message_id = await self._view.deliver(row, picture, buttons)
        except ChatUnreachable:
            raise
        except BaseException:
            await asyncio.shield(self._repo.release_delivery(row.task_id))  # try again at the next poll
            raise
        # Sent: from here on it must be recorded as sent, whatever cancels this.
        await asyncio.shield(self._repo.mark_delivered(row.task_id, message_id))
        with contextlib.suppress(NotShown):  # a status message left standing is no failed delivery
            await self._view.remove_status(row)

    async def _end(self, row: MjTaskRow, ending: Ending, detail: object = "") -> None:
        if await self._repo.fail_and_refund(row.task_id):
            await self._view.report_ending(row, ending, detail)

    async def _answer_dialog(self, row: MjTaskRow, task: MjTask) -> None:
        """Some buttons (Custom Zoom, Vary Region) open a dialog; it is answered with the picture's prompt."""
        if not row.prompt:
            await self._end(row, Ending.DIALOG_WITHOUT_PROMPT)
            return
        try:
            new_id = await self._mj.modal(task.id, row.prompt)
        except UserFacingError as error:
            await self._end(row, Ending.DIALOG_REFUSED, error.user_message)
            return
        if new_id != row.task_id:
            await self._repo.rename(row.task_id, new_id)
        await self._repo.record_shown(new_id, MODAL_ANSWERED, task.progress)
