"""The process's life: open the database and the one HTTP client, build everything, reach Telegram, serve
(polling or the webhook) until SIGTERM, let the work in flight finish, close."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import sys
from collections.abc import Iterator

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramUnauthorizedError

from bot.clients.claude import is_claude
from bot.clients.http import build_http_client, response_ceiling
from bot.config import ConfigError, Settings
from bot.core.logs import configure_logging
from bot.media.audio import find_ffmpeg
from bot.media.opus import AudioError
from bot.media.opus import warm_up as warm_voice_encoder
from bot.startup import forget_webhook, prepare_answer_types, reach_telegram, stopped_by_signals
from bot.telegram.menus import register_menus
from bot.telegram.middlewares import RunningUpdates
from bot.wiring import Services, build_bot, build_dispatcher, build_services, open_database
from storage import Database
from storage.memories import MemoryRepository

log = logging.getLogger(__name__)

# Seconds a gateway call made right after start-up waits for the catalog; a gateway slower than that is not
# waited for (each kind uses the first model of its list until the catalog is in).
CATALOG_WAIT = 3.0
# Seconds a worker thread may hold the GIL while the event loop waits for it, as the start-up's warm-up runs.
_SWITCH_INTERVAL_WHILE_WARMING = 0.0002


async def run(settings: Settings) -> None:
    secrets = [settings.BOT_TOKEN.get_secret_value(), settings.API_KEY.get_secret_value()]
    secrets += [_password_of(settings.DATABASE_URL.get_secret_value())]
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
    background: list[asyncio.Task[None]] = []
    services = None
    try:
        services = await build_services(settings, database, http, bot, ffmpeg)
        running = RunningUpdates()
        dispatcher = build_dispatcher(services, running)
        await reach_and_serve(settings, services, dispatcher, bot, database, background)
        # Turns in flight and the Midjourney round in progress finish side by side, within the same grace.
        grace = settings.SHUTDOWN_GRACE
        await asyncio.gather(running.drain(grace), services.tracker.stop(grace))
    except TelegramUnauthorizedError:
        raise ConfigError("configuration error: BOT_TOKEN was rejected by the Telegram Bot API") from None
    finally:
        for task in background:
            task.cancel()
        if services is not None:
            await services.retention.stop()
            await services.tracker.stop()
            if services.replica is not None:
                await services.replica.stop()
            await services.notices.close()
        await bot.session.close()
        await http.aclose()
        await database.close()
        log.info("stopped")


async def reach_and_serve(
    settings: Settings,
    services: Services,
    dispatcher: Dispatcher,
    bot: Bot,
    database: Database,
    background: list[asyncio.Task[None]],
) -> None:
    """Reach Telegram, then serve (polling or the webhook) until SIGTERM or Ctrl-C. Nothing that serving can do
    without stands before it: the catalog is read meanwhile, the menus are sent as the webhook is checked, and the
    SDKs are imported once updates are taken (`once_serving`)."""
    catalog = asyncio.create_task(services.models.refresh())
    background.append(catalog)
    asyncio.get_running_loop().call_later(CATALOG_WAIT, services.models.settle)

    async def serving() -> None:  # aiogram's start-up hook, as polling or the webhook begins
        background.append(asyncio.create_task(once_serving(services, catalog, database)))

    dispatcher.startup.register(serving)
    with stopped_by_signals():  # until polling or the webhook server take the signals over
        await reach_telegram(bot, settings)
        # The menus go out side by side with deleteWebhook, and are in place before the first update is taken.
        menus = asyncio.create_task(register_menus(bot, settings.ADMIN_IDS))
        if not settings.WEBHOOK_URL:
            await forget_webhook(bot)
        await menus
    # Everything built so far lives as long as the process (aiogram's models above all). Out of the collector's
    # sight, full collections get cheap, and therefore frequent enough to free the cyclic garbage each turn
    # leaves (HTTP responses) before it piles up.
    gc.freeze()
    await services.tracker.start()
    services.retention.start()
    if services.replica is not None:
        services.replica.start()
    # Both return on SIGTERM or Ctrl-C; the bot session stays open so the turns in flight can still answer.
    if settings.WEBHOOK_URL:
        # Imported here only: aiohttp's server side, a hundredth of a second of the start-up, polling does without.
        from bot.telegram.webhook import serve_webhook

        await serve_webhook(settings, dispatcher, bot, database)
    else:
        await dispatcher.start_polling(bot, handle_signals=True, close_bot_session=False)


async def once_serving(services: Services, catalog: asyncio.Task[bool], database: Database) -> None:
    """What the turns need but taking updates does not, built in worker threads once the bot serves, one thing at
    a time and the most needed first: the openai SDK as a conversation uses it (every turn's first gateway call
    waits for that), the voice encoder, the models of Telegram's answers, the rest of the SDK, numpy when someone
    has facts to recall. Then, once the catalog is in, admins hear of models in use that shut down within 30
    days, and the Claude SDK is imported when a Claude model is on offer."""
    with event_loop_first():
        await services.gateway.ready()
        try:
            await asyncio.to_thread(warm_voice_encoder)
        except AudioError as error:  # the first voice answer will say so to its user; the log hears it now
            log.warning("the voice encoder does not work: %s", error)
        await asyncio.to_thread(prepare_answer_types)
        await asyncio.to_thread(services.gateway.prepare_the_rest)
        if await MemoryRepository(database).any_kept():
            await asyncio.to_thread(importlib.import_module, "numpy")  # bot/memory.py's, imported on first use
        gc.freeze()  # what these built lives as long as the process too
        await catalog
        await services.models.warn_of_retirements()
        if any(is_claude(model) for model in services.models.chat_choices()):
            await services.claude.warm_up()


@contextlib.contextmanager
def event_loop_first() -> Iterator[None]:
    """While a worker thread runs Python for long stretches (imports, building models), the event loop, woken by
    the network, waits up to the interpreter's switch interval (5 ms) for the GIL each time: a turn wakes it a
    few dozen times. A shorter interval meanwhile gave a turn sent as polling began a third of a second back."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(_SWITCH_INTERVAL_WHILE_WARMING)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _password_of(url: str) -> str:
    """The password in a database URL, masked in the log like the other secrets ("" when there is none)."""
    from urllib.parse import urlsplit

    return urlsplit(url).password or "" if url else ""
