"""Webhook mode: Telegram posts updates to WEBHOOK_URL's path on WEBHOOK_HOST:WEBHOOK_PORT, checked against the
secret token; GET /healthz answers while the bot and its database are up."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.config import Settings
from storage import Database

log = logging.getLogger(__name__)


def webhook_secret(settings: Settings) -> str:
    """WEBHOOK_SECRET, or, when it is empty, a random one for this run: Telegram is told it with setWebhook,
    so nobody else can post updates either way."""
    return settings.WEBHOOK_SECRET.get_secret_value() or secrets.token_urlsafe(32)


async def serve_webhook(settings: Settings, dispatcher: Dispatcher, bot: Bot, database: Database) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop taking updates (the caller lets those in flight finish)."""
    secret = webhook_secret(settings)
    path = urlsplit(settings.WEBHOOK_URL).path or "/"
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret).register(app, path=path)

    async def healthz(_: web.Request) -> web.Response:
        try:
            await database.fetch_one("SELECT 1")
        except Exception:  # the database is what can be down; say so without detail
            return web.json_response({"status": "database unavailable"}, status=503)
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.WEBHOOK_HOST, settings.WEBHOOK_PORT)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await dispatcher.emit_startup(bot=bot, **dispatcher.workflow_data)
        await bot.set_webhook(
            settings.WEBHOOK_URL,
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
            drop_pending_updates=False,
        )
        log.info("serving the webhook on %s:%s%s", settings.WEBHOOK_HOST, settings.WEBHOOK_PORT, path)
        await stop.wait()
    finally:
        log.info("stopping: no more updates are taken")
        # Closing the listening site first: Telegram keeps what it cannot deliver and retries later.
        await site.stop()
        await runner.cleanup()
        await dispatcher.emit_shutdown(bot=bot, **dispatcher.workflow_data)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
