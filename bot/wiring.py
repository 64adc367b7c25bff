"""Wiring: the only place that knows every part. Builds the Bot, the services (by the names handlers ask for
them) and the Dispatcher with its middlewares and routers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from bot.admin import Administration
from bot.assistant import Assistant
from bot.clients.catalog import read_catalog
from bot.clients.claude import Claude
from bot.clients.gateway import Gateway
from bot.clients.midjourney import Midjourney
from bot.config import ConfigError, Settings
from bot.conversations import Conversations
from bot.drawing import Drawing
from bot.inflight import InFlight
from bot.media.audio import VoiceEncoder, encoder_parallelism
from bot.media.recordings import RecordingMeter
from bot.memory import Memory
from bot.midjourney.jobs import MidjourneyJobs
from bot.midjourney.prompts import PromptWriter
from bot.midjourney.tracker import MidjourneyTracker
from bot.midjourney.view import TelegramTaskView
from bot.models import Models
from bot.preferences import Preferences
from bot.quotas import Quotas
from bot.replicas import Listening, Replica
from bot.retention import Retention
from bot.search import Search
from bot.telegram.admin_notices import AdminNotices
from bot.telegram.albums import AlbumCollector, SharedAlbumCollector
from bot.telegram.identity import Identify
from bot.telegram.language import ActorLanguage
from bot.telegram.middlewares import BanGate, KnownUsers, RunningUpdates
from bot.telegram.recordings import RecordingIntake
from bot.telegram.retry import RetryAfterMiddleware
from bot.telegram.turns import TelegramTurns
from bot.tools import Tools
from bot.turns import Turns
from handlers import build_routers
from storage import Database, HistoryRepository, UsageRepository, UserRepository
from storage import open_database as open_storage
from storage.audit import AuditRepository
from storage.memories import MemoryRepository
from storage.midjourney import MidjourneyRepository
from storage.models import ModelListsRepository
from storage.preferences import PreferencesRepository
from storage.replicas import AlbumRepository

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
    url = settings.DATABASE_URL.get_secret_value()
    try:
        return await open_storage(settings.DATABASE_PATH, url)
    except (OSError, sqlite3.Error) as error:
        if url:  # never the URL itself: it holds the password
            raise ConfigError(
                f"configuration error: DATABASE_URL cannot be reached ({type(error).__name__})"
            ) from None
        raise ConfigError(f"configuration error: DATABASE_PATH cannot be opened ({error})") from None
    except Exception as error:  # asyncpg's own errors: a wrong password, a missing database, a refused schema
        if not url:
            raise
        raise ConfigError(f"configuration error: DATABASE_URL was refused ({type(error).__name__})") from None


@dataclass
class Services:
    """The services handlers ask for by name, and the background workers the process runs."""

    by_name: dict[str, Any]
    gateway: Gateway
    claude: Claude
    models: Models
    notices: AdminNotices
    tracker: MidjourneyTracker
    retention: Retention
    albums: BaseMiddleware  # AlbumCollector, or SharedAlbumCollector with replicas
    replica: Replica | None  # with replicas on PostgreSQL: this one


async def build_services(
    settings: Settings, database: Database, http: httpx.AsyncClient, bot: Bot, ffmpeg: str
) -> Services:
    # Several replicas share PostgreSQL; one process on SQLite has it to itself.
    replica = Replica(database) if database.dialect == "postgresql" else None
    usage = replica.usage if replica is not None else UsageRepository(database)
    if replica is None:  # with replicas, a dead one's run out on their own, not at another's start
        stale = await usage.release_all()
        if stale:
            log.info("released %d reservations left by the previous run", stale)
    users = UserRepository(database)
    quotas = Quotas(usage, settings)
    history = HistoryRepository(database)
    conversations = Conversations(history, settings.SYSTEM_PROMPT, settings.HISTORY_TURNS)
    # Gateway calls only wait on the network: one bound for all of them, OpenAI-format and Midjourney alike.
    gateway_slots = asyncio.Semaphore(settings.MAX_PARALLEL_GATEWAY_CALLS)
    # ffmpeg is CPU-bound: encoding answers and measuring recordings share one bound.
    parallel = encoder_parallelism(settings.MAX_PARALLEL_ENCODES)
    ffmpeg_slots = asyncio.Semaphore(parallel)
    models = Models(settings, ModelListsRepository(database), partial(read_catalog, http, settings))
    await models.load_lists()
    gateway = Gateway(settings, http, gateway_slots, models)
    claude = Claude(settings, http, gateway_slots)
    midjourney = Midjourney(settings, http, gateway_slots)
    mj_tasks = MidjourneyRepository(database)
    tracker = MidjourneyTracker(
        midjourney, mj_tasks, TelegramTaskView(bot), settings, replica.name if replica is not None else None
    )
    audit = AuditRepository(database)
    admin = Administration(settings, users, usage, audit, quotas, models)
    await admin.load()
    inflight = InFlight(replica)
    encoder = VoiceEncoder(ffmpeg_slots, parallel)
    preferences = Preferences(PreferencesRepository(database), settings.VOICE)
    notices = AdminNotices(bot, settings.ADMIN_IDS, preferences)
    models.notices = notices
    drawing = Drawing(gateway, models, settings.MAX_IMAGE_PIXELS)
    jobs = MidjourneyJobs(midjourney, mj_tasks, tracker, PromptWriter(gateway))
    search = Search(gateway)
    memory = Memory(MemoryRepository(database), gateway, models)
    turns = Turns(quotas, inflight)
    tools = Tools(drawing, jobs, search, memory, turns)
    by_name = {
        "settings": settings,
        "preferences": preferences,
        "models": models,
        "users": users,
        "admin": admin,
        "quotas": quotas,
        "conversations": conversations,
        "assistant": Assistant(
            gateway, claude, models, conversations, encoder, tools, memory, settings.MAX_IMAGE_PIXELS
        ),
        "drawing": drawing,
        "searcher": search,
        "memory": memory,
        "recordings": RecordingIntake(bot, RecordingMeter(ffmpeg, ffmpeg_slots), settings.MAX_VOICE_SECONDS),
        "tracker": tracker,
        "jobs": jobs,
        "inflight": inflight,
    }
    by_name["turns"] = TelegramTurns(turns, bot)
    retention = Retention(history, mj_tasks, audit, usage, settings.HISTORY_DAYS, AlbumRepository(database))
    albums: BaseMiddleware = AlbumCollector()
    if replica is not None:
        await Listening().connect(database, admin, preferences, models, inflight)
        albums = SharedAlbumCollector(AlbumRepository(database), replica.name, bot)
    return Services(by_name, gateway, claude, models, notices, tracker, retention, albums, replica)


def build_dispatcher(services: Services, running: RunningUpdates) -> Dispatcher:
    named = services.by_name
    dispatcher = Dispatcher(**named)
    # Outer middlewares run in this order for every update, before any filter: its task kept for a shutdown to
    # wait for, who acts, who they are, in which language, and whether they are banned.
    dispatcher.update.outer_middleware(running)
    dispatcher.update.outer_middleware(Identify())
    dispatcher.update.outer_middleware(KnownUsers(named["users"]))
    language = ActorLanguage(named["preferences"])
    dispatcher.update.outer_middleware(language)
    dispatcher.update.outer_middleware(BanGate(named["admin"]))
    # A failure is explained by the error handlers, outside the update's middlewares: in the same language.
    dispatcher.errors.outer_middleware(language)
    dispatcher.message.outer_middleware(services.albums)
    dispatcher.include_routers(*build_routers())
    return dispatcher
