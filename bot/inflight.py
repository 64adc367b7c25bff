"""Work in flight: each actor's requests, which /cancel stops (at most one heavy one at a time), and every running
update, so that a shutdown can let them finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.errors import Refusal, UserFacingError
from bot.i18n import _, __

log = logging.getLogger(__name__)

STILL_WORKING = Refusal(__("I'm still working on your last request. Wait for it, or send /cancel to stop it."))


class RequestCancelled(UserFacingError):
    """The user's /cancel stopped the request; everything it reserved has been given back."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.user_message = _("Stopped your {what}. Nothing was charged.").format(what=what)


@dataclass
class _Held:
    task: asyncio.Task[Any]
    what: str
    exclusive: bool
    cancelled_by_user: bool = False


class HeavyWork:
    """Each actor's requests in flight, which /cancel stops: at most one heavy one (a voice turn, an edit, a
    drawing, a Midjourney submission) at a time, and any number of light ones (text answers)."""

    def __init__(self) -> None:
        self._held: dict[int, list[_Held]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, actor_id: int, what: str, exclusive: bool = True) -> AsyncIterator[None]:
        """Run the block as one of the actor's requests; a second exclusive one meanwhile is refused in words.

        Hold only the slow part, not the sending of the answer: a request sent the moment the answer appears
        must not be refused. When the actor cancels, the block is interrupted and RequestCancelled comes out of
        it, so the quota reservation around it is released and the user is told, like any other failure.
        """
        mine = self._held.setdefault(actor_id, [])
        if exclusive and any(held.exclusive for held in mine):
            raise STILL_WORKING
        task = asyncio.current_task()
        assert task is not None
        held = _Held(task, what, exclusive)
        mine.append(held)
        try:
            yield
        except asyncio.CancelledError:
            if not held.cancelled_by_user:
                raise  # a shutdown: let it through
            task.uncancel()
            raise RequestCancelled(what) from None
        finally:
            mine.remove(held)
            if not mine and self._held.get(actor_id) is mine:
                del self._held[actor_id]

    def busy(self, actor_id: int) -> bool:
        """Whether the actor has an exclusive request running (a new one would be refused)."""
        return any(held.exclusive for held in self._held.get(actor_id, ()))

    def cancel(self, actor_id: int) -> str | None:
        """Stop every request of the actor's; returns what the first was, or None when there was none."""
        stopped = [held for held in self._held.get(actor_id, ()) if not held.cancelled_by_user]
        for held in stopped:
            held.cancelled_by_user = True
            held.task.cancel()
        return stopped[0].what if stopped else None


class RunningUpdates(BaseMiddleware):
    """Remembers the task handling each update, so a shutdown can wait for the turns in flight."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        task = asyncio.current_task()
        if task is None:
            return await handler(event, data)
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for the updates being handled; cancel what is left (releasing its quota)."""
        running = set(self._tasks)
        if not running:
            return
        log.info("waiting up to %.0fs for %d updates in flight", grace, len(running))
        _, unfinished = await asyncio.wait(running, timeout=grace)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("cancelled %d updates still running after %.0fs", len(unfinished), grace)
            await asyncio.wait(unfinished, timeout=5)
