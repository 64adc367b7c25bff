"""What the admins are told without asking, in private, each in their own language: a model the gateway stopped
serving and what replaced it, and models in use that are about to shut down."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError

from bot.core.i18n import _, language_of, use_language
from bot.preferences import Preferences
from bot.telegram.text import escape

log = logging.getLogger(__name__)


class AdminNotices:
    def __init__(self, bot: Bot, admin_ids: frozenset[int], preferences: Preferences) -> None:
        self._bot = bot
        self._admins = sorted(admin_ids)
        self._preferences = preferences
        self._sending: set[asyncio.Task[None]] = set()  # kept, so that a shutdown can wait for them

    async def model_replaced(self, kind: str, failed: str, replacement: str | None) -> None:
        """Sent in the background: the turn that found out is answered without waiting for the admins."""

        def text() -> str:
            said = _("⚠️ The gateway no longer serves the {kind} model <code>{model}</code>.").format(
                kind=kind, model=escape(failed)
            )
            if replacement is None:
                return said + " " + _("No other {kind} model of its list is left; see /models.").format(kind=kind)
            return (
                said
                + " "
                + _("<code>{model}</code> answers from now on; see /models.").format(model=escape(replacement))
            )

        task = asyncio.create_task(self._tell_each(text))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def models_retiring(self, retiring: Sequence[tuple[str, str, dt.date]]) -> None:
        def text() -> str:
            lines = [_("⏳ Models in use that shut down soon:")]
            lines += [
                f"• {kind}: <code>{escape(model)}</code> — {day.isoformat()}" for kind, model, day in retiring
            ]
            lines.append(_("Put their successors first with /setmodel."))
            return "\n".join(lines)

        await self._tell_each(text)

    async def close(self, grace: float = 5.0) -> None:
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=grace)
        for task in set(self._sending):
            task.cancel()

    async def _tell_each(self, text: Callable[[], str]) -> None:
        for admin_id in self._admins:
            language = await self._preferences.chosen_language(admin_id) or language_of(None)
            with use_language(language), contextlib.suppress(TelegramAPIError):
                await self._bot.send_message(admin_id, text())
