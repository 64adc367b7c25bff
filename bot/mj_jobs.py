"""Starting Midjourney jobs (imagine, blend, a button press): the quota is checked first, the use is counted the
moment the gateway accepts, and the task is handed to the tracker."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiogram.exceptions import TelegramAPIError

from bot.errors import Refusal
from bot.i18n import _, __, current_language
from bot.images import Picture, data_urls
from bot.inflight import HeavyWork
from bot.logs import log_turn
from bot.midjourney import Midjourney
from bot.mj_tracker import MidjourneyTracker
from bot.quotas import Quotas, Use, outcome_of
from bot.telegram_text import escape
from storage.midjourney import PAID_KIND, MidjourneyRepository, MjButtonRow, NewMjTask

log = logging.getLogger(__name__)

SEED_USAGE = Refusal(__("Reply /seed to one of my Midjourney pictures to get its seed."))
STALE_BUTTON = Refusal(__("This button no longer works. Start again with /imagine."))


PictureLoader = Callable[[], Awaitable[Sequence[Picture]]]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a job was asked for, and by whom: its status message and result go back there."""

    user_id: int
    chat_id: int
    thread_id: int
    message_id: int | None


@dataclass(frozen=True, slots=True)
class PressTicket:
    button: MjButtonRow
    use: Use


class ButtonBusy(Refusal):
    def __init__(self, label: str) -> None:
        super().__init__(
            _("{label} is already on its way; it will appear here when Midjourney is done.").format(label=label)
        )


class MidjourneyJobs:
    def __init__(
        self,
        midjourney: Midjourney,
        repository: MidjourneyRepository,
        quotas: Quotas,
        tracker: MidjourneyTracker,
        heavy: HeavyWork,
    ) -> None:
        self._mj = midjourney
        self._repo = repository
        self._quotas = quotas
        self._tracker = tracker
        self._heavy = heavy

    async def imagine(self, origin: Origin, prompt: str, references: PictureLoader | None = None) -> str:
        """Start a picture from a prompt; `references` fetches the reference pictures, once the quota and the
        one-request rule have let the job start (nobody makes the bot download and decode for free)."""

        async def submit() -> str:
            images = await data_urls(await references()) if references is not None else []
            return await self._mj.imagine(prompt, images)

        return await self._start(origin, "imagine", prompt, submit)

    async def blend(self, origin: Origin, pictures: PictureLoader, dimensions: str) -> str:
        async def submit() -> str:
            return await self._mj.blend(await data_urls(await pictures()), dimensions)

        return await self._start(origin, "blend", "", submit)

    async def claim_button(self, key: str, user_id: int) -> PressTicket:
        """The pressed button, marked as running, with the presser's use reserved.

        A stale key, a button whose job is still running, or an exhausted quota are refused here, before
        the press is answered, so the refusal can be the answer.
        """
        button = await self._repo.button(key)
        if button is None:
            raise STALE_BUTTON
        if not await self._repo.claim_button(key):
            raise ButtonBusy(button.label)
        try:
            use = await self._quotas.reserve(user_id, PAID_KIND)
        except BaseException:
            await self._repo.free_button(key)
            raise
        return PressTicket(button, use)

    async def abandon(self, ticket: PressTicket) -> None:
        await self._quotas.release(ticket.use)
        await self._repo.free_button(ticket.button.key)

    async def press(self, origin: Origin, ticket: PressTicket, prompt: str) -> str:
        """Submit a claimed button's action; the button is freed if that fails."""
        button = ticket.button
        try:
            return await self._submit(
                origin,
                ticket.use,
                "action",
                prompt,
                lambda: self._mj.action(button.task_id, button.custom_id),
                pressed_button=button.key,
                headline=_("⏳ {label}: queued…").format(label=escape(button.label)),
            )
        except BaseException:
            await self._repo.free_button(button.key)
            raise

    async def prompt_of(self, chat_id: int, message_id: int) -> str:
        """The prompt behind a delivered picture (a button's job inherits it, e.g. for Custom Zoom)."""
        row = await self._repo.task_of_result(chat_id, message_id)
        return row.prompt if row else ""

    async def seed(self, actor_id: int, chat_id: int, message_id: int) -> str:
        row = await self._repo.task_of_result(chat_id, message_id)
        if row is None:
            raise SEED_USAGE
        # A gateway call like any other: one request at a time per actor, which /cancel can stop.
        async with self._heavy.hold(actor_id, _("seed lookup")):
            return await self._mj.seed(row.task_id)

    async def _start(self, origin: Origin, kind: str, prompt: str, submit: Callable[[], Awaitable[str]]) -> str:
        started = time.monotonic()
        use = await self._quotas.reserve(origin.user_id, PAID_KIND)
        return await self._submit(origin, use, kind, prompt, submit, started=started)

    async def _submit(
        self,
        origin: Origin,
        use: Use,
        kind: str,
        prompt: str,
        submit: Callable[[], Awaitable[str]],
        pressed_button: str | None = None,
        headline: str = "",
        started: float | None = None,
    ) -> str:
        """Submit with the use reserved; count it once the gateway accepts, give it back if it does not."""
        started = started or time.monotonic()
        try:
            async with self._heavy.hold(origin.user_id, _("Midjourney request")):
                task_id = await submit()
        except BaseException as error:
            await self._quotas.release(use)
            log_turn(origin.user_id, PAID_KIND, outcome_of(error), started)
            raise
        task = NewMjTask(
            task_id=task_id,
            chat_id=origin.chat_id,
            thread_id=origin.thread_id,
            request_message_id=origin.message_id,
            requested_by=origin.user_id,
            kind=kind,
            prompt=prompt,
            pressed_button=pressed_button,
            locale=current_language(),
        )
        try:
            await self._repo.create_charged(task, use.reservation_id, use.day)
        except BaseException:
            await self._quotas.release(use)  # the job runs, untracked: at least nobody pays for it
            raise
        log_turn(origin.user_id, PAID_KIND, "submitted", started)
        try:
            await self._tracker.announce(task, headline or _("⏳ Queued…"))
        except TelegramAPIError as error:
            # The job runs and is tracked; the tracker sends a status message when it has news.
            log.warning("could not announce midjourney task %s: %s", task_id, type(error).__name__)
        return task_id
