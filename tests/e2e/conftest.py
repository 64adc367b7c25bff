"""End-to-end fixtures: the two test doubles on 127.0.0.1 and the real bot process pointed at them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from testkit.bot_process import BotProcess
from testkit.doubles.gateway import GatewayDouble
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.openai_spec import OpenAISpec
from testkit.doubles.telegram_api import TelegramDouble
from testkit.doubles.telegram_spec import TelegramSpec
from testkit.postgres import PostgresServer
from tests.e2e.harness import (
    ADMIN_ID,
    API_KEY,
    BOT_TOKEN,
    SHARED_SETTINGS,
    Person,
    StartBot,
    assert_database_intact,
    assert_no_secrets,
    new_person,
)
from tests.e2e.steps import Conversation


@pytest.fixture(scope="session")
async def telegram() -> AsyncIterator[TelegramDouble]:
    double = TelegramDouble(BOT_TOKEN, TelegramSpec.load())
    await double.start()
    yield double
    await double.stop()


@pytest.fixture(scope="session")
async def gateway_with_midjourney() -> AsyncIterator[tuple[GatewayDouble, MidjourneyDouble]]:
    double = GatewayDouble(API_KEY, OpenAISpec.load())
    midjourney = MidjourneyDouble(double, step_seconds=0.3)  # its routes must exist before the server starts
    await double.start()
    yield double, midjourney
    await double.stop()


@pytest.fixture(scope="session")
def gateway(gateway_with_midjourney: tuple[GatewayDouble, MidjourneyDouble]) -> GatewayDouble:
    return gateway_with_midjourney[0]


@pytest.fixture(scope="session")
def midjourney(gateway_with_midjourney: tuple[GatewayDouble, MidjourneyDouble]) -> MidjourneyDouble:
    return gateway_with_midjourney[1]


@pytest.fixture(scope="session")
async def bot(
    telegram: TelegramDouble,
    gateway: GatewayDouble,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[BotProcess]:
    """One bot process shared by the tests that need no special settings (each uses its own users)."""
    process = BotProcess(
        tmp_path_factory.mktemp("shared-bot"),
        telegram,
        gateway,
        BOT_TOKEN,
        API_KEY,
        SHARED_SETTINGS | await _database_settings(request),
    )
    await process.start()
    yield process
    await process.stop()
    assert_no_secrets(process, telegram)
    assert_database_intact(process)


@pytest.fixture
async def start_bot(
    gateway: GatewayDouble, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StartBot]:
    """Start a bot process of a test's own, with extra settings, against a Telegram double of its own
    (`process.telegram`), so it never competes with the shared process for updates. Calling it again with
    the same `workdir` restarts on the same database. Stopped, and its log checked, after the test."""
    own_telegram = TelegramDouble(BOT_TOKEN, TelegramSpec.load())
    await own_telegram.start()
    started: list[BotProcess] = []
    databases: dict[Path, dict[str, str]] = {}  # a restart on the same workdir finds the same database

    async def start(workdir: Path | None = None, **settings: str) -> BotProcess:
        workdir = workdir or tmp_path
        if workdir not in databases:
            databases[workdir] = await _database_settings(request)
        process = BotProcess(workdir, own_telegram, gateway, BOT_TOKEN, API_KEY, databases[workdir] | settings)
        await process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.running:
            await process.stop()
        assert_no_secrets(process, own_telegram)
        assert_database_intact(process)
    await own_telegram.stop()
    assert not own_telegram.violations, f"invalid Bot API calls: {own_telegram.violations}"


@pytest.fixture
def person(telegram: TelegramDouble) -> Callable[..., Person]:
    """Make people in the shared Telegram double."""

    def make(first_name: str = "Ann", language_code: str = "en") -> Person:
        return new_person(telegram, first_name, language_code)

    return make


@pytest.fixture
def admin(telegram: TelegramDouble) -> Conversation:
    """The admin of the shared process, in their private chat."""
    user, chat = telegram.private_chat(ADMIN_ID, first_name="Root")
    return Conversation(telegram, user, chat)


@pytest.fixture(autouse=True)
def doubles_stay_clean(telegram: TelegramDouble, gateway: GatewayDouble) -> Iterator[None]:
    """Every request the bot made in the test was valid against the specs; scripted answers end with the test."""
    yield
    telegram_violations, gateway_violations = list(telegram.violations), list(gateway.violations)
    telegram.violations.clear()
    gateway.violations.clear()
    gateway.reset_rules()
    assert not telegram_violations, f"invalid Bot API calls: {telegram_violations}"
    assert not gateway_violations, f"invalid gateway calls: {gateway_violations}"


async def _database_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """SQLite (the default), or with WENWEN_TEST_DATABASE=postgresql a fresh database on the run's PostgreSQL
    server: the whole end-to-end suite then runs against PostgreSQL."""
    if os.environ.get("WENWEN_TEST_DATABASE", "sqlite") != "postgresql":
        return {}
    server: PostgresServer = request.getfixturevalue("postgres")
    return {"DATABASE_URL": await server.new_database()}
