"""Reaching Telegram at start-up: it is waited for (a bot under a service manager comes up when the network
does), a rejected token stops the process, a webhook in polling's way is removed, and SIGTERM meanwhile stops at
once. (The gateway is reached by reading its model catalog, see bot/models.py: one line when it cannot be.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from urllib.parse import urlsplit

from aiogram import Bot, methods
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)

_FIRST_WAIT = 1.0
_LONGEST_WAIT = 60.0

# Every Bot API answer type, once built (see prepare_answer_types); held here for the process's life.
_ANSWER_TYPES: list[type] = []


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


def prepare_answer_types() -> None:
    """Blocking, for a worker thread (a twentieth of a second): build the model of each Bot API method's answer.
    aiogram builds `Response[...]` for a method's answer type the first time the method is called, a few
    milliseconds of pydantic on the event loop each, which would otherwise land in the first turns."""
    answers = {
        repr(method.__returning__): method.__returning__
        for method in (getattr(methods, name) for name in methods.__all__)
        if isinstance(method, type)
        and issubclass(method, methods.TelegramMethod)
        and method is not methods.TelegramMethod
    }
    _ANSWER_TYPES.extend(methods.Response[answer] for answer in answers.values())
