"""InFlight: one heavy request per actor at a time beside any number of light ones; /cancel stops every request of
that actor and nobody else's; a shutdown's cancellation passes through untouched."""

import asyncio
from dataclasses import dataclass, field

import pytest

from bot.core.errors import Refusal
from bot.inflight import STILL_WORKING, InFlight, RequestCancelled

ANN, BOB = 1, -1001  # a person, and a chat acting as one


@dataclass
class Request:
    """A request holding its place in InFlight until released, and how it ended."""

    work: InFlight
    actor: int
    what: str
    exclusive: bool = True
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str = ""

    async def run(self) -> None:
        try:
            async with self.work.hold(self.actor, self.what, exclusive=self.exclusive):
                self.entered.set()
                await self.release.wait()
            self.ended = "finished"
        except RequestCancelled as cancelled:
            self.ended = f"cancelled: {cancelled.user_message}"

    async def start(self) -> asyncio.Task[None]:
        """The running request, once inside its block (or what it raised, should it never get there)."""
        task = asyncio.create_task(self.run())
        entering = asyncio.create_task(self.entered.wait())
        await asyncio.wait({task, entering}, return_when=asyncio.FIRST_COMPLETED)
        entering.cancel()
        if not self.entered.is_set():
            task.result()
            pytest.fail(f"{self.what} ended without entering its block: {self.ended}")
        return task


async def test_a_second_exclusive_request_is_refused_and_a_light_one_is_not() -> None:
    """While Ann's voice turn runs, her edit is refused in words and her text answer runs alongside; Bob is free."""
    work = InFlight()
    voice = Request(work, ANN, "voice message")
    voice_task = await voice.start()
    assert work.busy(ANN) and not work.busy(BOB)

    with pytest.raises(Refusal) as refused:
        async with work.hold(ANN, "photo edit"):
            pytest.fail("a second exclusive hold ran")
    assert refused.value is STILL_WORKING

    text = Request(work, ANN, "answer", exclusive=False)
    text_task = await text.start()
    other = Request(work, BOB, "photo edit")
    other_task = await other.start()

    for request in (voice, text, other):
        request.release.set()
    await asyncio.gather(voice_task, text_task, other_task)
    assert [request.ended for request in (voice, text, other)] == ["finished"] * 3
    assert not work.busy(ANN)
    async with work.hold(ANN, "photo edit"):  # free again
        pass


async def test_cancel_stops_every_request_of_the_actor_and_no_other() -> None:
    """cancel(ANN) interrupts both of Ann's requests, each with RequestCancelled out of its block (not a
    cancelled task); Bob's request goes on and finishes."""
    work = InFlight()
    voice = Request(work, ANN, "voice message")
    text = Request(work, ANN, "answer", exclusive=False)
    other = Request(work, BOB, "drawing")
    tasks = [await request.start() for request in (voice, text, other)]

    assert work.cancel(ANN) == "voice message"
    await asyncio.gather(tasks[0], tasks[1])
    assert voice.ended == "cancelled: Stopped your voice message. Nothing was charged."
    assert text.ended == "cancelled: Stopped your answer. Nothing was charged."
    assert not tasks[0].cancelled() and not tasks[1].cancelled()  # the cancellation was turned into words
    assert not tasks[2].done() and other.ended == ""
    assert work.cancel(ANN) is None  # nothing left to stop

    other.release.set()
    await tasks[2]
    assert other.ended == "finished"


async def test_a_shutdown_cancellation_passes_through() -> None:
    """task.cancel() without InFlight.cancel() (a shutdown) comes out as CancelledError, not as a /cancel."""
    work = InFlight()
    voice = Request(work, ANN, "voice message")
    task = await voice.start()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and voice.ended == ""
    assert not work.busy(ANN)
