"""The one place where failures reach the user: in words, never as a traceback, key or upstream JSON."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent, Message, Update

from bot.core.errors import UserFacingError
from bot.core.i18n import __
from bot.midjourney.tracker import MidjourneyTracker
from bot.telegram.text import escape

log = logging.getLogger(__name__)

UNEXPECTED = __("Sorry, something went wrong on my side. Please try again.")


def build_router() -> Router:
    router = Router(name=__name__)
    router.errors.register(explain_failure, ExceptionTypeFilter(UserFacingError))
    router.errors.register(chat_closed, ExceptionTypeFilter(TelegramForbiddenError))
    router.errors.register(report_unexpected)
    return router


async def explain_failure(event: ErrorEvent, bot: Bot) -> None:
    """A failure the code foresaw (gateway down, quota used up, bad input): its own message says what happened."""
    error = event.exception
    assert isinstance(error, UserFacingError)
    log.info("update %s ended: %s", event.update.update_id, type(error).__name__)
    await tell(event, bot, str(error.user_message))


async def chat_closed(event: ErrorEvent, tracker: MidjourneyTracker) -> None:
    """The user blocked the bot, or it was removed from the group: nobody to tell; stop working for that chat."""
    log.info("update %s: the bot can no longer write to that chat", event.update.update_id)
    if (chat_id := _chat_id(event.update)) is not None:
        await tracker.chat_closed(chat_id)


def _chat_id(update: Update) -> int | None:
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    return None


async def report_unexpected(event: ErrorEvent, bot: Bot) -> None:
    log.error("update %s failed", event.update.update_id, exc_info=event.exception)
    await tell(event, bot, str(UNEXPECTED))


async def tell(event: ErrorEvent, bot: Bot, text: str) -> None:
    """Answer where the update came from: the message's chat (and topic), or the pressed button; when that
    button was answered already, its chat."""
    update = event.update
    try:
        if update.message is not None:
            await update.message.answer(escape(text))
        elif update.callback_query is not None:
            await _tell_presser(update.callback_query, text)
    except TelegramAPIError as error:
        # The user may have blocked the bot, or Telegram is unreachable: nothing more to do for this update.
        log.warning("could not tell the user about a failure: %s", type(error).__name__)


async def _tell_presser(query: CallbackQuery, text: str) -> None:
    try:
        await query.answer(text[:200], show_alert=True)
    except TelegramBadRequest:
        if not isinstance(query.message, Message):
            raise
        await query.message.answer(f"{escape(query.from_user.full_name)}: {escape(text)}")
