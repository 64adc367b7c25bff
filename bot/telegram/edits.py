"""Editing messages that users may have changed under the bot: unchanged text is fine, a deleted message is news."""

from __future__ import annotations

from collections.abc import Awaitable

from aiogram.exceptions import TelegramBadRequest


async def edited(edit: Awaitable[object]) -> bool:
    """Make an edit; False when the message is gone (deleted by the user), so a new one must be sent.

    An edit that changes nothing (a double tap, a repeated state) counts as done.
    """
    try:
        await edit
    except TelegramBadRequest as error:
        if "not modified" in error.message:
            return True
        if "not found" in error.message or "can't be edited" in error.message:
            return False
        raise
    return True
