"""A turn: one request of an actor that costs something, from its reservation to its log line.

Every paid or exclusive request runs as one: the use is reserved (over the limit nothing is called), the request
is held as one of the actor's requests in flight (one exclusive at a time; /cancel stops it), and then the use
is committed when the request succeeded or given back when it failed or was cancelled. One log line per turn,
whatever its outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from babel.support import LazyProxy

from bot.core.logs import log_turn
from bot.inflight import InFlight
from bot.quotas import QuotaExceeded, Quotas, Use


def outcome_of(error: BaseException) -> str:
    """The error's class name: what went wrong, never its text (which may hold what the user said)."""
    return "cancelled" if isinstance(error, asyncio.CancelledError) else type(error).__name__


@dataclass(frozen=True, slots=True)
class TurnRule:
    """What a handler declares about its requests."""

    kind: str | None  # the quota kind charged; None: free (but still one of the actor's requests)
    label: str | LazyProxy  # what /cancel says it stopped ("Stopped your voice message")
    exclusive: bool = True  # one at a time per actor; a second one meanwhile is refused in words
    name: str = ""  # the kind in the log line, when no quota kind says it
    chat_action: str | None = None  # what the messenger shows meanwhile ("typing", "record_voice")

    @property
    def logged_as(self) -> str:
        return self.kind or self.name or "free"


@dataclass(slots=True)
class Turn:
    """Handed to the work: it reports its tokens, or that it counted the use itself."""

    actor_id: int
    use: Use | None
    let_go: Callable[[], None] = field(repr=False)  # of the actor's place in flight
    tokens: int = 0
    settled_as: str | None = None

    def answering(self) -> None:
        """The answer is ready and being sent: the actor's next request may start (it is not refused as "still
        working"), and /cancel no longer stops this one. The use is still committed only once the turn ends
        well."""
        self.let_go()

    def settle(self, outcome: str) -> None:
        """The use was counted along with the work's own result (a Midjourney job stored with its charge): the
        turn neither commits nor releases it, and logs `outcome`. Nothing is left for /cancel to stop."""
        self.settled_as = outcome
        self.let_go()


class Turns:
    def __init__(self, quotas: Quotas, inflight: InFlight) -> None:
        self._quotas = quotas
        self._inflight = inflight

    @asynccontextmanager
    async def run(self, actor_id: int, rule: TurnRule) -> AsyncIterator[Turn]:
        """The block as one turn of the actor's; see the module's text. The commit and the release are shielded,
        so a cancelled request (the actor's /cancel, a shutdown) still settles its use."""
        started = time.monotonic()
        try:
            use = await self._quotas.reserve(actor_id, rule.kind) if rule.kind is not None else None
        except QuotaExceeded:
            log_turn(actor_id, rule.logged_as, "over_quota", started)  # a turn too, if a very short one
            raise
        turn: Turn | None = None
        try:
            async with self._inflight.hold(actor_id, str(rule.label), rule.exclusive) as let_go:
                turn = Turn(actor_id, use, let_go)
                yield turn
        except BaseException as error:
            try:
                if use is not None and (turn is None or turn.settled_as is None):
                    await asyncio.shield(self._quotas.release(use))
            finally:  # the line is written even when a second cancellation interrupts the release
                log_turn(actor_id, rule.logged_as, outcome_of(error), started)
            raise
        assert turn is not None
        try:
            if use is not None and turn.settled_as is None:
                use.tokens = turn.tokens
                await asyncio.shield(self._quotas.commit(use))
        finally:  # likewise when a shutdown lands on the (shielded, so completed) commit
            log_turn(actor_id, rule.logged_as, turn.settled_as or "ok", started, turn.tokens)
