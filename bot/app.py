"""Wiring: open the database and HTTP client, build the Bot and Dispatcher with their services, and run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from bot.actors import Identify
from bot.admin import Administration
from bot.albums import AlbumCollector
from bot.assistant import Assistant
from bot.audio import VoiceEncoder, encoder_parallelism, find_ffmpeg
from bot.config import ConfigError, Settings
from bot.conversations import Conversations
from bot.gateway import Gateway
from bot.http_client import build_http_client, response_ceiling
from bot.i18n import UserLanguage, build_i18n
from bot.inflight import HeavyWork, RunningUpdates
from bot.logs import configure_logging
from bot.menus import register_menus
from bot.middlewares import BanGate, KnownUsers
from bot.midjourney import Midjourney
from bot.mj_jobs import MidjourneyJobs
from bot.mj_tracker import MidjourneyTracker
from bot.preferences import Preferences
from bot.quotas import Quotas
from bot.recordings import RecordingMeter
from bot.retention import Retention
from bot.startup import check_gateway, reach_telegram
from bot.telegram_retry import RetryAfterMiddleware
from bot.webhook import serve_webhook
from handlers import build_routers
from storage import Database, HistoryRepository, UsageRepository, UserRepository
from storage.audit import AuditRepository
from storage.midjourney import MidjourneyRepository
from storage.preferences import PreferencesRepository

log = logging.getLogger(__name__)


def build_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.TELEGRAM_API_URL))
    session.middleware(RetryAfterMiddleware())
    return Bot(
        token=settings.BOT_TOKEN.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


async def open_database(settings: Settings) -> Database:
    try:
        return await Database.open(settings.DATABASE_PATH)
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(f"configuration error: DATABASE_PATH cannot be opened ({error})") from None


async def build_services(
    settings: Settings, database: Database, http: httpx.AsyncClient, bot: Bot, ffmpeg: str
) -> dict[str, Any]:
    """Every service, by the name handlers ask for it."""
    usage = UsageRepository(database)
    stale = await usage.release_all()
    if stale:
        log.info("released %d reservations left by the previous run", stale)
    users = UserRepository(database)
    quotas = Quotas(usage, settings)
    history = HistoryRepository(database)
    conversations = Conversations(history, settings.SYSTEM_PROMPT, settings.HISTORY_TURNS)
    gateway_slots = asyncio.Semaphore(settings.MAX_PARALLEL_GATEWAY_CALLS)
    # ffmpeg is CPU-bound: encoding answers and measuring recordings share one bound.
    parallel = encoder_parallelism(settings.MAX_PARALLEL_ENCODES)
    ffmpeg_slots = asyncio.Semaphore(parallel)
    gateway = Gateway(settings, http, gateway_slots)
    midjourney = Midjourney(settings, http, gateway_slots)
    mj_tasks = MidjourneyRepository(database)
    i18n = build_i18n()
    tracker = MidjourneyTracker(bot, midjourney, mj_tasks, settings, i18n)
    audit = AuditRepository(database)
    admin = Administration(settings, users, usage, audit, quotas)
    await admin.load()
    heavy = HeavyWork()
    preferences = Preferences(PreferencesRepository(database), settings.VOICE)
    return {
        "i18n": i18n,
        "preferences": preferences,
        "settings": settings,
        "users": users,
        "admin": admin,
        "quotas": quotas,
        "conversations": conversations,
        "gateway": gateway,
        "assistant": Assistant(
            gateway, conversations, VoiceEncoder(ffmpeg, ffmpeg_slots, parallel), settings.MAX_IMAGE_PIXELS
        ),
        "meter": RecordingMeter(ffmpeg, ffmpeg_slots),
        "tracker": tracker,
        "jobs": MidjourneyJobs(midjourney, mj_tasks, quotas, tracker, heavy),
        "heavy": heavy,
        "retention": Retention(history, mj_tasks, audit, usage, settings.HISTORY_DAYS),
    }


def build_dispatcher(services: dict[str, Any], running: RunningUpdates) -> Dispatcher:
    dispatcher = Dispatcher(**services)
    # Outer middlewares run in this order for every update, before any filter.
    dispatcher.update.outer_middleware(running)
    dispatcher.update.outer_middleware(Identify())
    dispatcher.update.outer_middleware(KnownUsers(services["users"]))
    # The language of each message, button and error: the actor's choice, else their Telegram language.
    language = UserLanguage(services["i18n"], services["preferences"].chosen_language)
    dispatcher.update.outer_middleware(BanGate(services["admin"], language))
    language.setup(dispatcher)
    dispatcher.message.outer_middleware(AlbumCollector())
    dispatcher.include_routers(*build_routers())
    return dispatcher


async def run(settings: Settings) -> None:
    secrets = [settings.BOT_TOKEN.get_secret_value(), settings.API_KEY.get_secret_value()]
    configure_logging(
        settings.LOG_LEVEL, secrets + [settings.WEBHOOK_SECRET.get_secret_value()], settings.LOG_FORMAT
    )
    try:
        ffmpeg = find_ffmpeg(settings.FFMPEG_PATH)
    except FileNotFoundError as error:
        raise ConfigError(f"configuration error: {error}") from None

    database = await open_database(settings)
    # As many connections as gateway calls may be in flight, and a few for image downloads.
    http = build_http_client(
        settings.MAX_PARALLEL_GATEWAY_CALLS + 16, response_ceiling(settings.max_download_bytes)
    )
    bot = build_bot(settings)
    tracker: MidjourneyTracker | None = None
    gateway_check: asyncio.Task[None] | None = None
    retention: Retention | None = None
    try:
        services = await build_services(settings, database, http, bot, ffmpeg)
        running = RunningUpdates()
        dispatcher = build_dispatcher(services, running)
        warming = asyncio.create_task(asyncio.to_thread(services["gateway"].warm_up))
        gateway_check = asyncio.create_task(check_gateway(http, settings))
        with stopped_by_signals():  # until polling or the webhook server take the signals over
            await reach_telegram(bot, settings)
            if not settings.WEBHOOK_URL:
                await forget_webhook(bot)
            await register_menus(bot, services["i18n"], settings.ADMIN_IDS)
            await warming
        # Everything built so far lives as long as the process (aiogram's and the SDK's models above all). Out
        # of the collector's sight, full collections get cheap, and therefore frequent enough to free the
        # cyclic garbage each turn leaves (HTTP responses) before it piles up.
        gc.freeze()
        tracker = services["tracker"]
        await tracker.start()
        retention = services["retention"]
        retention.start()
        # Both return on SIGTERM or Ctrl-C; the bot session stays open so the turns in flight can still answer.
        if settings.WEBHOOK_URL:
            await serve_webhook(settings, dispatcher, bot, database)
        else:
            await dispatcher.start_polling(bot, handle_signals=True, close_bot_session=False)
        # Turns in flight and the Midjourney round in progress finish side by side, within the same grace.
        await asyncio.gather(running.drain(settings.SHUTDOWN_GRACE), tracker.stop(settings.SHUTDOWN_GRACE))
    except TelegramUnauthorizedError:
        raise ConfigError("configuration error: BOT_TOKEN was rejected by the Telegram Bot API") from None
    finally:
        if gateway_check is not None:
            gateway_check.cancel()
        if retention is not None:
            await retention.stop()
        if tracker is not None:
            await tracker.stop()
        await bot.session.close()
        await http.aclose()
        await database.close()
        log.info("stopped")


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and Ctrl-C during start-up (Telegram being waited for) stop the process at once and cleanly."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def forget_webhook(bot: Bot) -> None:
    """A webhook left from an earlier deployment would make every getUpdates fail with 409 Conflict."""
    try:
        await bot.delete_webhook(drop_pending_updates=False)
    except TelegramUnauthorizedError:
        raise
    except TelegramAPIError as error:  # network errors included
        # Polling retries with backoff on its own; a failure here is not a reason to stop.
        log.warning("could not delete the webhook: %s", type(error).__name__)
