"""Starting Midjourney jobs (imagine, blend, a button press) within a turn: the use reserved by the turn is
counted the moment the gateway accepts, in the same transaction that starts tracking the task; a failed
submission leaves it to the turn to give back."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from bot.clients.midjourney import Midjourney
from bot.core.errors import Refusal
from bot.core.i18n import _, __, current_language
from bot.media.images import Picture, data_urls
from bot.midjourney.prompts import PromptWriter
from bot.midjourney.tracker import ChatUnreachable, MidjourneyTracker, NotShown
from bot.turns import Turn
from storage.midjourney import MidjourneyRepository, NewMjTask

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
        tracker: MidjourneyTracker,
        writer: PromptWriter,
    ) -> None:
        self._mj = midjourney
        self._repo = repository
        self._tracker = tracker
        self._writer = writer

    async def imagine(
        self, turn: Turn, origin: Origin, prompt: str, references: PictureLoader | None = None
    ) -> str:
        """Start a picture from a prompt; `references` fetches the reference pictures, once the turn has let the
        job start (nobody makes the bot download and decode for free). A prompt that is not English is rewritten
        into English first, as part of the same (imagine) use; both are shown."""
        english = await self._writer.english(prompt)

        async def submit() -> str:
            images = await data_urls(await references()) if references is not None else []
            return await self._mj.imagine(english or prompt, images)

        return await self._submit(
            turn, origin, "imagine", english or prompt, submit, original=prompt if english else ""
        )

    async def blend(self, turn: Turn, origin: Origin, pictures: PictureLoader, dimensions: str) -> str:
        async def submit() -> str:
            return await self._mj.blend(await data_urls(await pictures()), dimensions)

        return await self._submit(turn, origin, "blend", "", submit)

    async def press(
        self,
        key: str,
        origin: Origin,
        turn: Callable[[], AbstractAsyncContextManager[Turn]],
        acknowledge: Callable[[str], Awaitable[object]],
    ) -> str:
        """A button under a picture: its job submitted in the presser's `turn`. A key nobody issued, or a button
        whose job still runs (pressed twice at once, by anyone), is refused first, before the turn; `acknowledge`
        (answering the press) gets the button's label once the turn has started. The button is free again if
        anything after that fails."""
        button = await self._repo.button(key)
        if button is None:
            raise STALE_BUTTON
        if not await self._repo.claim_button(key):
            raise ButtonBusy(button.label)
        paid: Turn | None = None
        try:
            async with turn() as paid:
                await acknowledge(button.label)
                prompt = await self.prompt_of(origin.chat_id, origin.message_id)
                return await self._submit(
                    paid, origin, "action", prompt, lambda: self._mj.action(button.task_id, button.custom_id),
                    pressed_button=key, label=button.label,
                )  # fmt: skip
        except BaseException:
            # Free again unless its job was stored: a running job's button must stay busy, or a second press
            # would start (and charge) the same job twice. The finished job frees it.
            if paid is None or paid.settled_as is None:
                await self._repo.free_button(key)
            raise

    async def prompt_of(self, chat_id: int, message_id: int | None) -> str:
        """The prompt behind a delivered picture (a button's job inherits it, e.g. for Custom Zoom)."""
        row = await self._repo.task_of_result(chat_id, message_id) if message_id is not None else None
        return row.prompt if row else ""

    async def seed(self, chat_id: int, message_id: int) -> str:
        row = await self._repo.task_of_result(chat_id, message_id)
        if row is None:
            raise SEED_USAGE
        return await self._mj.seed(row.task_id)

    async def _submit(
        self,
        turn: Turn,
        origin: Origin,
        kind: str,
        prompt: str,
        submit: Callable[[], Awaitable[str]],
        pressed_button: str | None = None,
        label: str | None = None,
        original: str = "",
    ) -> str:
        """Submit; once the gateway accepts, count the turn's use and start tracking, in one transaction."""
        assert turn.use is not None, "a Midjourney job is always a paid turn"
        task_id = await submit()
        # Accepted upstream: the job runs whatever happens now, so /cancel can no longer stop (or refund) it.
        turn.answering()
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
            original_prompt=original,
        )
        # If this fails, the job runs untracked; the turn gives the use back: at least nobody pays for it.
        await self._repo.create_charged(task, turn.use.reservation_id, turn.use.day)
        turn.settle("submitted")
        try:
            await self._tracker.announce(task, label)
        except (NotShown, ChatUnreachable) as error:
            # The job runs and is tracked; the tracker shows it when it has news.
            log.warning("could not announce midjourney task %s: %s", task_id, type(error).__name__)
        return task_id
