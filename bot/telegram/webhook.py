"""Webhook mode: Telegram posts updates to WEBHOOK_URL's path on WEBHOOK_HOST:WEBHOOK_PORT, checked against the
secret token; GET /healthz answers while the bot and its database are up."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import signal
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiohttp import web

from bot.config import Settings
from storage import Database

log = logging.getLogger(__name__)

_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_secret(settings: Settings) -> str:
    """WEBHOOK_SECRET, or, when it is empty, a random one for this run: Telegram is told it with setWebhook,
    so nobody else can post updates either way."""
    return settings.WEBHOOK_SECRET.get_secret_value() or secrets.token_urlsafe(32)


def secret_matches(given: str, secret: str) -> bool:
    """Compare in constant time, as bytes: a header may carry any bytes (aiohttp hands non-UTF-8 ones over as
    surrogates), and comparing such a str would raise instead of saying no. (The secret itself is ASCII, so how
    a surrogate is spelled in bytes cannot make a match.)"""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), secret.encode("utf-8"))


class UpdateReceiver:
    """The webhook endpoint: checks the secret, takes the update and answers Telegram at once; the update is
    handled in a task of its own, so a slow turn never holds one of Telegram's connections."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret: str) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._secret = secret
        self._handling: set[asyncio.Task[Any]] = set()

    async def __call__(self, request: web.Request) -> web.Response:
        if not secret_matches(request.headers.get(_SECRET_HEADER, ""), self._secret):
            return web.Response(status=401, text="Unauthorized")
        try:
            update = await request.json()
        except ValueError:
            return web.Response(status=400, text="Bad Request")
        if not isinstance(update, dict):
            return web.Response(status=400, text="Bad Request")
        task = asyncio.create_task(self._dispatcher.feed_raw_update(self._bot, update))
        self._handling.add(task)
        task.add_done_callback(self._finished)
        return web.json_response({})

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._handling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Handlers' own failures are answered by the error router; what lands here is an update aiogram could
            # not even read. Its class is enough: the update may hold what a user wrote.
            log.warning("an update could not be handled: %s", type(task.exception()).__name__)


async def serve_webhook(settings: Settings, dispatcher: Dispatcher, bot: Bot, database: Database) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop taking updates (the caller lets those in flight finish)."""
    secret = webhook_secret(settings)
    path = urlsplit(settings.WEBHOOK_URL).path or "/"
    app = web.Application()
    app.router.add_post(path, UpdateReceiver(dispatcher, bot, secret))

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
