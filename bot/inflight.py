"""Work in flight: at most one heavy request per user (which /cancel can stop), and every running update,
so that a shutdown can let them finish."""

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
    cancelled_by_user: bool = False


class HeavyWork:
    """One voice turn, edit, drawing or Midjourney submission per user at a time."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}

    @contextlib.asynccontextmanager
    async def hold(self, user_id: int, what: str) -> AsyncIterator[None]:
        """Run the block as the user's one heavy request; a second one meanwhile is refused in words.

        Hold only the slow part, not the sending of the answer: a request sent the moment the answer appears
        must not be refused. When the user cancels, the block is interrupted and RequestCancelled comes out of
        it, so the quota reservation around it is released and the user is told, like any other failure.
        """
        if user_id in self._held:
            raise STILL_WORKING
        task = asyncio.current_task()
        assert task is not None
        held = self._held[user_id] = _Held(task, what)
        try:
            yield
        except asyncio.CancelledError:
            if not held.cancelled_by_user:
                raise  # a shutdown: let it through
            task.uncancel()
            raise RequestCancelled(what) from None
        finally:
            if self._held.get(user_id) is held:
                del self._held[user_id]

    def cancel(self, user_id: int) -> str | None:
        """Stop the user's heavy request; returns what it was, or None when there was none."""
        held = self._held.get(user_id)
        if held is None or held.cancelled_by_user:
            return None
        held.cancelled_by_user = True
        held.task.cancel()
        return held.what


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
