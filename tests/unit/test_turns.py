"""The turn mechanism (bot/turns.py) with real Quotas over SQLite and a real InFlight: what a turn commits, releases
or leaves alone, whose place it holds and when it lets go, what /cancel does to it, and its one log line each; and
TelegramTurns' chat action, through a real aiogram Bot whose session only records the calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import SendChatAction, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message
from aiogram.utils.chat_action import ChatActionSender

from bot.config import Settings
from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.inflight import STILL_WORKING, InFlight, RequestCancelled
from bot.quotas import QuotaExceeded, Quotas
from bot.telegram.turns import TelegramTurns
from bot.turns import Turn, TurnRule, Turns
from storage import Database, UsageRepository

ANN, BOB = 1, 2
DAY = "2026-01-01"
VOICE = TurnRule("voice", "voice message")  # paid, exclusive
CHAT = TurnRule("chat", "answer", exclusive=False)  # paid, light
SEED = TurnRule(None, "seed lookup", name="seed")  # free, exclusive

LogLine = tuple[int, str, str, int]  # user, kind, outcome, tokens


@dataclass
class Ledger:
    """The turn mechanism over one database, and what the usage tables hold."""

    database: Database
    inflight: InFlight
    turns: Turns

    async def used(self, user_id: int, kind: str) -> tuple[int, int] | None:
        """(count, tokens) of the user's committed uses of `kind`, None when there is no row."""
        row = await self.database.fetch_one(
            "SELECT count, tokens FROM usage WHERE user_id = ? AND kind = ?", (user_id, kind)
        )
        return None if row is None else (row[0], row[1])

    async def reservations(self) -> list[int]:
        return [row[0] for row in await self.database.fetch_all("SELECT id FROM reservations ORDER BY id")]


@pytest.fixture
async def ledger(any_database: Database) -> AsyncIterator[Ledger]:
    database = any_database
    settings = Settings(BOT_TOKEN="1:x", API_KEY="k", QUOTA_VOICE=5, QUOTA_CHAT=5)
    inflight = InFlight()
    quotas = Quotas(UsageRepository(database), settings, today=lambda: DAY)
    yield Ledger(database, inflight, Turns(quotas, inflight))


@pytest.fixture
def turn_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[LogLine]]:
    """The turn lines logged so far, as (user, kind, outcome, tokens)."""
    caplog.set_level(logging.INFO, logger="bot.turns")

    def lines() -> list[LogLine]:
        fields = [getattr(record, "fields", {}) for record in caplog.records if record.name == "bot.turns"]
        return [(line["user"], line["kind"], line["outcome"], line["tokens"]) for line in fields]

    return lines


@dataclass
class Running:
    """A turn run as a task of its own: inside its block until `end()`, when it reports `tokens`."""

    ledger: Ledger
    actor: int
    rule: TurnRule
    tokens: int = 0
    answer_first: bool = False  # call turn.answering() on entering the block
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    finish: asyncio.Event = field(default_factory=asyncio.Event)
    turn: Turn | None = None
    task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.ledger.turns.run(self.actor, self.rule) as turn:
            self.turn = turn
            if self.answer_first:
                turn.answering()
            self.entered.set()
            await self.finish.wait()
            turn.tokens = self.tokens

    async def start(self) -> Running:
        """Once the turn is inside its block (or fails the test with what kept it out)."""
        self.task = asyncio.create_task(self._run())
        entering = asyncio.create_task(self.entered.wait())
        await asyncio.wait({self.task, entering}, return_when=asyncio.FIRST_COMPLETED)
        entering.cancel()
        if not self.entered.is_set():
            self.task.result()
            pytest.fail(f"the {self.rule.label} turn ended without entering its block")
        return self

    async def end(self) -> None:
        assert self.task is not None
        self.finish.set()
        await self.task


async def test_success_commits_the_use_with_the_turns_tokens(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """The use is reserved before the block runs and committed after it, with the tokens the block reported."""
    async with ledger.turns.run(ANN, VOICE) as turn:
        assert turn.use is not None and await ledger.reservations() == [turn.use.reservation_id]
        assert await ledger.used(ANN, "voice") is None
        turn.tokens = 42
    assert await ledger.used(ANN, "voice") == (1, 42)
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "ok", 42)]


async def test_failure_releases_the_use(ledger: Ledger, turn_log: Callable[[], list[LogLine]]) -> None:
    """An error out of the block gives the reservation back, counts nothing, and logs the error's class."""
    with pytest.raises(RuntimeError):
        async with ledger.turns.run(ANN, VOICE):
            assert len(await ledger.reservations()) == 1
            raise RuntimeError("the gateway broke")
    assert await ledger.used(ANN, "voice") is None
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "RuntimeError", 0)]


async def test_a_cancelled_task_releases_the_use(ledger: Ledger, turn_log: Callable[[], list[LogLine]]) -> None:
    """task.cancel() (a shutdown) comes out as CancelledError, and the use is given back all the same."""
    running = await Running(ledger, ANN, VOICE).start()
    assert running.task is not None
    running.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running.task
    assert await ledger.used(ANN, "voice") is None
    assert await ledger.reservations() == []
    assert not ledger.inflight.busy(ANN)
    assert turn_log() == [(ANN, "voice", "cancelled", 0)]


async def test_a_settled_turn_leaves_its_reservation_to_whoever_settled_it(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """After turn.settle() the turn neither commits nor releases the use, whether the block ends well or not;
    it logs the settled outcome (or the error)."""
    async with ledger.turns.run(ANN, VOICE) as settled:
        settled.tokens = 7
        settled.settle("submitted")
    with pytest.raises(RuntimeError):
        async with ledger.turns.run(ANN, VOICE) as failed:
            failed.settle("submitted")
            raise RuntimeError("after the settling")
    assert settled.use is not None and failed.use is not None
    assert await ledger.reservations() == [settled.use.reservation_id, failed.use.reservation_id]
    assert await ledger.used(ANN, "voice") is None
    assert turn_log() == [(ANN, "voice", "submitted", 7), (ANN, "voice", "RuntimeError", 0)]


async def test_a_free_turn_reserves_nothing_but_holds_the_actors_place(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """A turn of kind None has no use, yet while it runs the same actor's next exclusive free turn is refused
    with STILL_WORKING; another actor's runs. The rule's name is the kind in the log."""
    ann = await Running(ledger, ANN, SEED).start()
    assert ann.turn is not None and ann.turn.use is None
    assert await ledger.reservations() == []

    with pytest.raises(Refusal) as refused:
        async with ledger.turns.run(ANN, SEED):
            pytest.fail("a second exclusive free turn of Ann's ran")
    assert refused.value is STILL_WORKING
    bob = await Running(ledger, BOB, SEED).start()

    await bob.end()
    await ann.end()
    assert await ledger.database.fetch_all("SELECT * FROM usage") == []
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "seed", "Refusal", 0), (BOB, "seed", "ok", 0), (ANN, "seed", "ok", 0)]


async def test_light_turns_of_one_actor_run_side_by_side(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """Two light turns of Ann's are inside their blocks at once, each with its own reservation, both committed;
    and an exclusive one starts beside them."""
    first = await Running(ledger, ANN, CHAT, tokens=10).start()
    second = await Running(ledger, ANN, CHAT, tokens=5).start()
    assert len(await ledger.reservations()) == 2
    async with ledger.turns.run(ANN, VOICE):
        pass
    await first.end()
    await second.end()
    assert await ledger.used(ANN, "chat") == (2, 15)
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "ok", 0), (ANN, "chat", "ok", 10), (ANN, "chat", "ok", 5)]


async def test_an_exclusive_turn_beside_a_running_one_is_refused_and_released(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """While Ann's voice turn runs, her second one is refused with STILL_WORKING and leaves no reservation
    behind; only the first is counted."""
    first = await Running(ledger, ANN, VOICE, tokens=3).start()
    assert first.turn is not None and first.turn.use is not None
    with pytest.raises(Refusal) as refused:
        async with ledger.turns.run(ANN, VOICE):
            pytest.fail("a second exclusive turn of Ann's ran")
    assert refused.value is STILL_WORKING
    assert await ledger.reservations() == [first.turn.use.reservation_id]

    await first.end()
    assert await ledger.used(ANN, "voice") == (1, 3)
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "Refusal", 0), (ANN, "voice", "ok", 3)]


async def test_answering_lets_the_next_turn_in_and_puts_the_first_out_of_cancels_reach(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """After turn.answering(), while the first turn is still inside its block: Ann's next exclusive turn is
    admitted, /cancel finds nothing to stop, and the first still ends well and is committed with its tokens."""
    first = await Running(ledger, ANN, VOICE, tokens=9, answer_first=True).start()
    assert not ledger.inflight.busy(ANN)
    async with ledger.turns.run(ANN, VOICE) as second:
        second.tokens = 1
    assert ledger.inflight.cancel(ANN) is None
    await first.end()  # raises had the cancel reached it
    assert await ledger.used(ANN, "voice") == (2, 10)
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "ok", 1), (ANN, "voice", "ok", 9)]


async def test_cancel_during_a_turn_gives_the_use_back(
    ledger: Ledger, turn_log: Callable[[], list[LogLine]]
) -> None:
    """InFlight.cancel stops the turn: RequestCancelled (not a cancelled task) comes out of the block, the use
    is released, and the line says RequestCancelled."""
    running = await Running(ledger, ANN, VOICE, tokens=4).start()
    assert running.task is not None
    assert ledger.inflight.cancel(ANN) == "voice message"
    with pytest.raises(RequestCancelled):
        await running.task
    assert not running.task.cancelled()
    assert await ledger.used(ANN, "voice") is None
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "RequestCancelled", 0)]


async def test_over_the_limit_the_block_never_runs(ledger: Ledger, turn_log: Callable[[], list[LogLine]]) -> None:
    """With no uses left, QuotaExceeded is raised before the block, nothing is held or reserved, and the one
    line says over_quota."""
    await UsageRepository(ledger.database).set_override(ANN, ["voice"], 0)
    ran = False
    with pytest.raises(QuotaExceeded):
        async with ledger.turns.run(ANN, VOICE):
            ran = True
    assert not ran
    assert not ledger.inflight.busy(ANN)
    assert await ledger.reservations() == []
    assert turn_log() == [(ANN, "voice", "over_quota", 0)]


class RecordingSession(BaseSession):
    """A Bot API session that answers every call with True (all sendChatAction needs) and keeps the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self._arrived = asyncio.Event()

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.calls.append(method)
        self._arrived.set()
        return True  # type: ignore[return-value]

    async def call_to(self, chat_id: int) -> TelegramMethod[Any]:
        """The first call for `chat_id`, once it has been made."""
        while True:
            for call in self.calls:
                if getattr(call, "chat_id", None) == chat_id:
                    return call
            self._arrived.clear()
            await self._arrived.wait()

    async def close(self) -> None:
        pass

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError
        yield b""


GROUP, TOPIC, WITNESS = -100123, 7, -100999
RECORDING = TurnRule("voice", "voice message", chat_action="record_voice")


def message(in_topic: bool) -> Message:
    """A message in a forum topic, or in the chat's general thread (a reply thread, not a topic)."""
    return Message(
        message_id=5,
        date=dt.datetime.now(dt.UTC),
        chat=Chat(id=GROUP, type="supergroup", is_forum=in_topic),
        message_thread_id=TOPIC,
        is_topic_message=in_topic or None,
    )


@pytest.mark.parametrize(("in_topic", "thread"), [(True, TOPIC), (False, None)])
async def test_telegram_turns_show_the_rules_chat_action(
    ledger: Ledger, in_topic: bool, thread: int | None
) -> None:
    """While the block runs, the rule's chat action is sent to the message's chat, in its forum topic when it
    was written in one; the turn underneath is a real one (committed with its tokens)."""
    session = RecordingSession()
    bot = Bot("42:TEST", session=session)
    async with TelegramTurns(ledger.turns, bot).run(Actor(ANN, "Ann"), RECORDING, message(in_topic)) as turn:
        call = await session.call_to(GROUP)
        turn.tokens = 3
    assert isinstance(call, SendChatAction)
    assert (call.action, call.message_thread_id) == ("record_voice", thread)
    assert await ledger.used(ANN, "voice") == (1, 3)


@pytest.mark.parametrize(
    ("rule", "shown_in"),
    [(TurnRule("voice", "voice message"), message(True)), (RECORDING, None)],
    ids=["no action in the rule", "no message to show it in"],
)
async def test_telegram_turns_send_no_chat_action_without_both(
    ledger: Ledger, rule: TurnRule, shown_in: Message | None
) -> None:
    """Without a chat action in the rule, or without a message, nothing is sent. Proven against a witness: a
    sender started inside the block, after any the turn could have started, whose call arrives alone."""
    session = RecordingSession()
    bot = Bot("42:TEST", session=session)
    async with TelegramTurns(ledger.turns, bot).run(Actor(ANN, "Ann"), rule, shown_in):
        async with ChatActionSender(bot=bot, chat_id=WITNESS, action="typing"):
            await session.call_to(WITNESS)
    assert [getattr(call, "chat_id", None) for call in session.calls] == [WITNESS]
