"""Flood control: a Bot API call answered 429 is made again after the wait Telegram asks for, not dropped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import GetUpdates, SendChatAction, TelegramMethod
from aiogram.methods.base import Response

log = logging.getLogger(__name__)

# A chat action lapses in 5 s anyway, and polling has its own backoff: waiting helps neither.
_NOT_RETRIED = (GetUpdates, SendChatAction)


class RetryAfterMiddleware(BaseRequestMiddleware):
    def __init__(self, attempts: int = 3, longest_wait: float = 60.0) -> None:
        self._attempts = attempts
        self._longest_wait = longest_wait

    async def __call__(
        self, make_request: NextRequestMiddlewareType[Any], bot: Bot, method: TelegramMethod[Any]
    ) -> Response[Any]:
        for attempt in range(1, self._attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if (
                    isinstance(method, _NOT_RETRIED)
                    or attempt == self._attempts
                    or error.retry_after > self._longest_wait
                ):
                    raise
                log.info("flood control on %s: retrying in %ss", type(method).__name__, error.retry_after)
                await asyncio.sleep(error.retry_after)
        raise AssertionError("unreachable")  # the loop returns or raises
