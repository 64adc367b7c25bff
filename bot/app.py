"""The process's life: open the database and the one HTTP client, build everything, reach Telegram, serve
(polling or the webhook) until SIGTERM, let the work in flight finish, close."""

from __future__ import annotations

import asyncio
import gc
import logging

from aiogram.exceptions import TelegramUnauthorizedError

from bot.clients.claude import is_claude
from bot.clients.http import build_http_client, response_ceiling
from bot.config import ConfigError, Settings
from bot.core.logs import configure_logging
from bot.media.audio import find_ffmpeg
from bot.startup import forget_webhook, reach_telegram, stopped_by_signals
from bot.telegram.menus import register_menus
from bot.telegram.middlewares import RunningUpdates
from bot.telegram.webhook import serve_webhook
from bot.wiring import Services, build_bot, build_dispatcher, build_services, open_database

log = logging.getLogger(__name__)

# Seconds the start-up waits for the gateway's catalog once everything else is ready.
CATALOG_WAIT = 3.0


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
    background: list[asyncio.Task[None]] = []
    services = None
    try:
        services = await build_services(settings, database, http, bot, ffmpeg)
        running = RunningUpdates()
        dispatcher = build_dispatcher(services, running)
        warming = asyncio.create_task(asyncio.to_thread(services.gateway.warm_up))
        # The catalog is read while Telegram is reached, and waited for a moment before serving; a gateway slower
        # than that is not waited for (each kind uses the first model of its list until the catalog is in).
        catalog = asyncio.create_task(services.models.refresh())
        background.append(catalog)
        with stopped_by_signals():  # until polling or the webhook server take the signals over
            await reach_telegram(bot, settings)
            if not settings.WEBHOOK_URL:
                await forget_webhook(bot)
            await register_menus(bot, settings.ADMIN_IDS)
            await warming
            await asyncio.wait([catalog], timeout=CATALOG_WAIT)
        background.append(asyncio.create_task(after_the_catalog(services, catalog)))
        # Everything built so far lives as long as the process (aiogram's and the SDK's models above all). Out
        # of the collector's sight, full collections get cheap, and therefore frequent enough to free the
        # cyclic garbage each turn leaves (HTTP responses) before it piles up.
        gc.freeze()
        await services.tracker.start()
        services.retention.start()
        # Both return on SIGTERM or Ctrl-C; the bot session stays open so the turns in flight can still answer.
        if settings.WEBHOOK_URL:
            await serve_webhook(settings, dispatcher, bot, database)
        else:
            await dispatcher.start_polling(bot, handle_signals=True, close_bot_session=False)
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
            await services.notices.close()
        await bot.session.close()
        await http.aclose()
        await database.close()
        log.info("stopped")


async def after_the_catalog(services: Services, catalog: asyncio.Task[bool]) -> None:
    """Once the catalog is in: admins hear of models in use that shut down within 30 days, and the Claude SDK is
    imported in the background when a Claude model is on offer."""
    await catalog
    await services.models.warn_of_retirements()
    if any(is_claude(model) for model in services.models.chat_choices()):
        await services.claude.warm_up()
