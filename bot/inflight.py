"""Each actor's requests in flight: at most one exclusive (heavy) one at a time, and /cancel stops them all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.errors import Refusal, UserFacingError
from bot.core.i18n import _, __

log = logging.getLogger(__name__)

STILL_WORKING = Refusal(__("I'm still working on your last request. Wait for it, or send /cancel to stop it."))


class RequestCancelled(UserFacingError):
    """The user's /cancel stopped the request; everything it reserved has been given back."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.user_message = _("Stopped your {what}. Nothing was charged.").format(what=what)


class SharedRequests(Protocol):
    """The requests of every replica on one database (bot.replicas); absent for one process on SQLite."""

    async def take(self, token: str, actor_id: int, what: str, exclusive: bool) -> bool: ...

    def drop_soon(self, token: str) -> None: ...

    async def alive_of(self, actor_id: int) -> list[str]: ...

    async def cancel_everywhere(self, actor_id: int) -> None: ...


@dataclass
class _Held:
    task: asyncio.Task[Any]
    what: str
    exclusive: bool
    cancelled_by_user: bool = False


class InFlight:
    """Each actor's requests in flight, which /cancel stops: at most one heavy one (a voice turn, an edit, a
    drawing, a Midjourney submission) at a time, and any number of light ones (text answers)."""

    def __init__(self, shared: SharedRequests | None = None) -> None:
        self._held: dict[int, list[_Held]] = {}
        self._shared = shared

    @contextlib.asynccontextmanager
    async def hold(self, actor_id: int, what: str, exclusive: bool = True) -> AsyncIterator[Callable[[], None]]:
        """Run the block as one of the actor's requests; a second exclusive one meanwhile is refused in words.

        The block gets a function that lets go of the request's place before the block ends: called once the
        answer is ready, so that a request sent the moment the answer appears is not refused (and a /cancel no
        longer cuts the answer off half-sent). When the actor cancels, the block is interrupted and
        RequestCancelled comes out of it, so the quota reservation around it is released and the user is told,
        like any other failure.
        """
        mine = self._held.setdefault(actor_id, [])
        if exclusive and any(held.exclusive for held in mine):
            raise STILL_WORKING
        task = asyncio.current_task()
        assert task is not None
        held = _Held(task, what, exclusive)
        mine.append(held)
        token = secrets.token_hex(8)
        shared = self._shared

        def let_go() -> None:
            if held in mine:
                mine.remove(held)
                if not mine and self._held.get(actor_id) is mine:
                    del self._held[actor_id]
                if shared is not None:
                    shared.drop_soon(token)

        try:
            if shared is not None and not await shared.take(token, actor_id, what, exclusive):
                raise STILL_WORKING  # running on another replica
        except BaseException:
            let_go()  # also the row of a take cancelled after it was written
            raise

        try:
            yield let_go
        except asyncio.CancelledError:
            if not held.cancelled_by_user:
                raise  # a shutdown: let it through
            task.uncancel()
            raise RequestCancelled(what) from None
        finally:
            let_go()

    def busy(self, actor_id: int) -> bool:
        """Whether the actor has an exclusive request running (a new one would be refused)."""
        return any(held.exclusive for held in self._held.get(actor_id, ()))

    async def cancel_everywhere(self, actor_id: int) -> str | None:
        """Stop every request of the actor's, on this replica and on every other; what the first was, or None
        when none was running anywhere."""
        here = self.cancel(actor_id)
        if self._shared is None:
            return here
        elsewhere = await self._shared.alive_of(actor_id)
        if elsewhere:
            await self._shared.cancel_everywhere(actor_id)
        return here or (elsewhere[0] if elsewhere else None)

    def cancel(self, actor_id: int) -> str | None:
        """Stop every request of the actor's on this replica; what the first was, or None when there was none."""
        stopped = [held for held in self._held.get(actor_id, ()) if not held.cancelled_by_user]
        for held in stopped:
            held.cancelled_by_user = True
            held.task.cancel()
        return stopped[0].what if stopped else None
