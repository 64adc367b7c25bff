"""Reaching the outside at start-up: Telegram is waited for (a bot under a service manager comes up when the
network does), a rejected token stops the process, an unreachable gateway is said in one line."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import httpx
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)

_FIRST_WAIT = 1.0
_LONGEST_WAIT = 60.0
_GATEWAY_CHECK_TIMEOUT = 10.0


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


async def reach_telegram(bot: Bot, settings: Settings) -> None:
    """getMe until it answers: network trouble and Telegram's own outages are waited out with backoff, one line
    each; a token Telegram rejects is a configuration error."""
    wait = _FIRST_WAIT
    while True:
        try:
            await bot.me()
            return
        except TelegramUnauthorizedError:
            raise ConfigError("configuration error: BOT_TOKEN was rejected by the Telegram Bot API") from None
        except TelegramAPIError as error:  # network errors, 5xx, flood control
            log.warning(
                "cannot reach the Telegram Bot API at %s (TELEGRAM_API_URL): %s; trying again in %.0f s",
                host_of(settings.TELEGRAM_API_URL),
                type(error).__name__,
                wait,
            )
        await asyncio.sleep(wait)
        wait = min(wait * 2, _LONGEST_WAIT)


async def check_gateway(http: httpx.AsyncClient, settings: Settings) -> None:
    """One line at start-up when the gateway cannot be reached or refuses the key; the bot runs regardless (its
    users get apologies until the gateway is back)."""
    host = host_of(settings.API_BASE_URL)
    headers = {"Authorization": f"Bearer {settings.API_KEY.get_secret_value()}"}
    try:
        async with asyncio.timeout(_GATEWAY_CHECK_TIMEOUT):
            response = await http.get(settings.API_BASE_URL + "/models", headers=headers)
            await response.aclose()
    except (httpx.HTTPError, TimeoutError) as error:
        log.warning(
            "cannot reach the gateway at %s (API_BASE_URL): %s; requests get an apology until it answers",
            host,
            type(error).__name__,
        )
        return
    if response.status_code in (401, 403):
        log.error("the gateway at %s rejected API_KEY (HTTP %s)", host, response.status_code)
