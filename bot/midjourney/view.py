"""What a person sees of a Midjourney task, in Telegram: the status message edited with progress (a photo once
there is a preview), the finished picture with its buttons, and why a task ended without one. Each task speaks
the language of whoever asked for it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, InputMediaPhoto, Message, ReplyParameters

from bot.clients.midjourney_tasks import MjTask
from bot.core.i18n import _, use_language
from bot.core.lru import LruCache
from bot.media.images import TELEGRAM_PHOTO_LIMIT
from bot.midjourney.keyboard import keyboard
from bot.midjourney.tracker import WAITING, ChatUnreachable, Ending, NotShown, StatusMessage
from bot.telegram.edits import edited
from bot.telegram.text import escape, shorten
from storage.midjourney import MjButtonRow, MjTaskRow, NewMjTask

# Telegram allows about one edit a second in a chat and twenty a minute in a group.
_EDIT_GAP_PRIVATE = 1.0
_EDIT_GAP_GROUP = 3.0
# Chats whose last edit time is remembered: a time older than the gap means nothing, so a few thousand suffice.
_EDIT_TIMES_KEPT = 4096


class TelegramTaskView:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._last_edit: LruCache[int, float] = LruCache(_EDIT_TIMES_KEPT)

    async def announce(self, task: MjTaskRow | NewMjTask, label: str | None) -> StatusMessage:
        async with self._speaking(task):
            headline = _("⏳ {label}: queued…").format(label=escape(label)) if label else _("⏳ Queued…")
            return await self._send_status(task, _status_text(headline, task))

    def ready_to_show(self, chat_id: int) -> bool:
        gap = _EDIT_GAP_PRIVATE if chat_id > 0 else _EDIT_GAP_GROUP
        now = time.monotonic()
        last = self._last_edit.get(chat_id)
        if last is not None and now - last < gap:
            return False
        self._last_edit.put(chat_id, now)
        return True

    async def show_progress(self, row: MjTaskRow, task: MjTask, preview: bytes | None) -> StatusMessage:
        async with self._speaking(row):
            if task.status in WAITING:
                headline = _("⏳ Queued…")
            else:
                headline = _("🎨 Drawing… {progress}%").format(progress=task.progress)
            text = _status_text(headline, row)
            if preview is not None:
                return await self._show_preview(row, preview, text)
            if row.status_message_id is None:
                return await self._send_status(row, text)
            return await self._edit_status(row, text)

    async def deliver(self, row: MjTaskRow, picture: bytes, buttons: Sequence[MjButtonRow]) -> int:
        async with self._speaking(row):
            markup = keyboard([(button.key, button.label) for button in buttons])
            caption = escape(shorten(row.prompt, 1000)) or None
            upload = BufferedInputFile(picture, filename="midjourney.jpg")
            send = self._bot.send_photo if len(picture) <= TELEGRAM_PHOTO_LIMIT else self._bot.send_document
            sent: Message = await send(
                row.chat_id, upload, caption=caption, reply_markup=markup,
                message_thread_id=row.thread_id or None, reply_parameters=_reply_to(row),
            )  # fmt: skip
            return sent.message_id

    async def remove_status(self, row: MjTaskRow) -> None:
        async with self._speaking(row):
            await self._delete(row.chat_id, row.status_message_id)

    async def report_ending(self, row: MjTaskRow, ending: Ending, detail: object) -> None:
        async with self._speaking(row):
            message = _ending_text(ending, detail) + "\n" + _("Your imagine use was given back.")
            if row.status_message_id is not None:
                with contextlib.suppress(TelegramBadRequest):
                    if row.shown_image:
                        await self._bot.edit_message_caption(
                            chat_id=row.chat_id, message_id=row.status_message_id, caption=message
                        )
                    else:
                        await self._bot.edit_message_text(
                            message, chat_id=row.chat_id, message_id=row.status_message_id
                        )
                    return
            await self._bot.send_message(
                row.chat_id, message, message_thread_id=row.thread_id or None, reply_parameters=_reply_to(row)
            )

    @contextlib.asynccontextmanager
    async def _speaking(self, task: MjTaskRow | NewMjTask) -> AsyncIterator[None]:
        """In the task's language; Telegram's refusals turned into what the tracker understands."""
        try:
            with use_language(task.locale):
                yield
        except TelegramForbiddenError:
            raise ChatUnreachable(task.chat_id) from None
        except TelegramAPIError as error:
            raise NotShown(type(error).__name__) from None

    async def _send_status(self, task: MjTaskRow | NewMjTask, text: str) -> StatusMessage:
        sent = await self._bot.send_message(
            task.chat_id, text, message_thread_id=task.thread_id or None, reply_parameters=_reply_to(task)
        )
        return StatusMessage(sent.message_id, is_photo=False)

    async def _show_preview(self, row: MjTaskRow, image: bytes, caption: str) -> StatusMessage:
        photo = BufferedInputFile(image, filename="preview.jpg")
        if row.shown_image and row.status_message_id is not None:
            media = InputMediaPhoto(media=photo, caption=caption)
            if await edited(
                self._bot.edit_message_media(media, chat_id=row.chat_id, message_id=row.status_message_id)
            ):
                return StatusMessage(row.status_message_id, is_photo=True)
        # A text message cannot become a photo (and a deleted one cannot be edited): send a new one.
        sent = await self._bot.send_photo(
            row.chat_id, photo, caption=caption, message_thread_id=row.thread_id or None,
            reply_parameters=_reply_to(row),
        )  # fmt: skip
        await self._delete(row.chat_id, row.status_message_id)
        return StatusMessage(sent.message_id, is_photo=True)

    async def _edit_status(self, row: MjTaskRow, text: str) -> StatusMessage:
        assert row.status_message_id is not None
        if row.shown_image:
            edit = self._bot.edit_message_caption(
                chat_id=row.chat_id, message_id=row.status_message_id, caption=text
            )
        else:
            edit = self._bot.edit_message_text(text, chat_id=row.chat_id, message_id=row.status_message_id)
        if await edited(edit):
            return StatusMessage(row.status_message_id, row.shown_image)
        return await self._send_status(row, text)  # the status message is gone: a new one

    async def _delete(self, chat_id: int, message_id: int | None) -> None:
        if message_id is None:
            return
        with contextlib.suppress(TelegramBadRequest):
            await self._bot.delete_message(chat_id, message_id)


def _ending_text(ending: Ending, detail: object) -> str:
    match ending:
        case Ending.FAILED if detail:
            return _("❌ Midjourney could not finish this picture: {reason}").format(
                reason=escape(shorten(str(detail), 200))
            )
        case Ending.FAILED:
            return _("❌ Midjourney could not finish this picture.")
        case Ending.TIMED_OUT:  # detail: the timeout, in seconds
            minutes = max(1, round(float(str(detail)) / 60))
            return _("⌛ Midjourney did not finish this picture within {minutes} min.").format(minutes=minutes)
        case Ending.TOO_LARGE:
            return _("❌ Midjourney finished this picture, but it is larger than I accept.")
        case Ending.UNDELIVERABLE:
            return _("❌ Midjourney finished this picture, but it could not be delivered.")
        case Ending.DIALOG_WITHOUT_PROMPT:
            return _("⚠️ This Midjourney button asks for a prompt, and this picture has none to give.")
        case Ending.DIALOG_REFUSED:
            return f"⚠️ {escape(str(detail))}"


def _status_text(headline: str, task: MjTaskRow | NewMjTask) -> str:
    """The headline over the prompt; a prompt rewritten into English shows the words it was asked in too."""
    if not task.prompt:
        return headline
    prompt = f"<i>{escape(shorten(task.prompt, 300))}</i>"
    if task.original_prompt:
        prompt = f"<i>{escape(shorten(task.original_prompt, 300))}</i>\n→ {prompt}"
    return f"{headline}\n{prompt}"


def _reply_to(row: MjTaskRow | NewMjTask) -> ReplyParameters | None:
    if row.request_message_id is None:
        return None
    return ReplyParameters(message_id=row.request_message_id, allow_sending_without_reply=True)
