"""An answer shown while it is being written: a draft in private chats (sendMessageDraft), a message edited at
Telegram's pace in groups; in both, the final text arrives as real messages of at most 4096 characters each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from aiogram import Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message

from bot.core.i18n import _
from bot.telegram.replies import answer_text, reply_target
from bot.telegram.text import MESSAGE_LIMIT, escape, first_part

# Drafts are animated by the client: a few updates a second read as smooth typing.
_DRAFT_GAP = 0.4
# Telegram allows about one edit a second in a chat (twenty a minute in a group); long texts are slower to
# re-render, so they are edited less often.
_EDIT_GAP = 1.0
_EDIT_GAP_PER_1000_CHARACTERS = 0.5
# In a group, an answer that is complete within this time is simply sent: no message flickering into place.
_FIRST_EDIT_AFTER = 1.0
_WRITING = " …"


class LiveAnswer:
    """`update(text)` as the text grows (never blocks: a display task shows the newest text at the allowed
    pace), then `finish(text)`. Leaving the block with an exception marks a half-shown group answer as cut off."""

    def __init__(self, message: Message, bot: Bot) -> None:
        self._message = message
        self._bot = bot
        self._private = message.chat.type == ChatType.PRIVATE
        self._latest = ""
        self._changed = asyncio.Event()
        self._started = time.monotonic()
        self._display: asyncio.Task[None] | None = None
        # Groups: the messages shown so far; all but the last are complete parts of the answer.
        self._shown: list[tuple[Message, str]] = []
        self._last_is_complete = False
        self._frozen = 0  # characters of the answer already in complete parts

    async def __aenter__(self) -> LiveAnswer:
        self._display = asyncio.create_task(self._show_as_written())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._stop_display()
        if error is not None and self._shown:
            # The apology follows from the error handler; the half answer above it should say it stopped.
            with contextlib.suppress(TelegramAPIError):
                shown, text = self._shown[-1]
                await shown.edit_text(escape(text) + "\n\n" + _("(the answer was cut off)"))

    def update(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def finish(self, text: str) -> None:
        await self._stop_display()
        if not self._shown:  # a private chat, or a group answer complete within the first second
            await answer_text(self._message, text)
            return
        await self._show_group(text, final=True)

    async def _stop_display(self) -> None:
        if self._display is not None:
            self._display.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._display
            self._display = None

    async def _show_as_written(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                if self._private:
                    await self._show_draft(self._latest)
                    await asyncio.sleep(_DRAFT_GAP)
                elif time.monotonic() - self._started >= _FIRST_EDIT_AFTER:
                    await self._show_group(self._latest, final=False)
                    await asyncio.sleep(_EDIT_GAP + _EDIT_GAP_PER_1000_CHARACTERS * len(self._latest) / 1000)
                else:
                    await asyncio.sleep(_FIRST_EDIT_AFTER - (time.monotonic() - self._started))
                    self._changed.set()
            except TelegramAPIError:
                # Showing progress is a nicety: flood control or a hiccup only means fewer updates. (A wait that
                # Telegram asked for has already been waited out by the session middleware.)
                await asyncio.sleep(_EDIT_GAP)

    async def _show_draft(self, text: str) -> None:
        # A draft holds one message: show the part being written now, after any that would be complete.
        rest = text
        while True:
            part, offset = first_part(rest, MESSAGE_LIMIT - len(_WRITING))
            if offset >= len(rest):
                break
            rest = rest[offset:]
        await self._bot.send_message_draft(
            chat_id=self._message.chat.id, draft_id=self._message.message_id, text=escape(part) + _WRITING
        )

    async def _show_group(self, text: str, final: bool) -> None:
        """Fill the messages shown so far with `text`: complete parts stay, the last one grows or is closed and
        followed by a new message once the text passes 4096 characters."""
        rest = text[self._frozen :]
        while True:
            suffix = "" if final else _WRITING
            part, offset = first_part(rest, MESSAGE_LIMIT - len(suffix))
            complete = offset < len(rest)
            shown = part if complete or final else part + suffix
            await self._put(shown, new=not self._shown or self._last_is_complete)
            if not complete:
                return
            self._last_is_complete = True
            self._frozen += offset + (len(rest[offset:]) - len(rest[offset:].lstrip()))
            rest = text[self._frozen :]
            if not rest.strip():
                return

    async def _put(self, text: str, new: bool) -> None:
        if new:
            target = reply_target(self._message) if not self._shown else None  # the first part quotes the question
            sent = await self._message.answer(escape(text), reply_parameters=target)
            self._shown.append((sent, text))
            self._last_is_complete = False
            return
        message, current = self._shown[-1]
        if text != current:
            await message.edit_text(escape(text))
            self._shown[-1] = (message, text)
