"""The Midjourney poller: one batch call per interval for every pending task, progress shown in each task's status
message, results delivered with their buttons, failures and timeouts refunded; resumes from the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.types import BufferedInputFile, InputMediaPhoto, Message, ReplyParameters
from aiogram.utils.i18n import I18n

from bot.config import Settings
from bot.errors import Refusal, UserFacingError
from bot.i18n import _
from bot.images import TELEGRAM_PHOTO_LIMIT, PictureTooLarge, as_telegram_photo
from bot.lru import LruCache
from bot.midjourney import Midjourney, MidjourneyError, MidjourneyTooLarge, MjTask
from bot.mj_keyboard import keyboard
from bot.telegram_edits import edited
from bot.telegram_text import escape, shorten
from storage.midjourney import MidjourneyRepository, MjTaskRow, NewMjTask

log = logging.getLogger(__name__)

# Ids per list-by-condition call: one call serves every pending task up to this many.
LIST_BATCH = 200
# Telegram allows about one edit a second in a chat and twenty a minute in a group.
_EDIT_GAP_PRIVATE = 1.0
_EDIT_GAP_GROUP = 3.0
# Status messages of many tasks are edited side by side, but not all at once.
_PARALLEL_TASKS = 16
_WAITING = {"", "NOT_START", "SUBMITTED"}
_MODAL_ANSWERED = "MODAL_ANSWERED"
# Polls in a row a finished picture may fail to arrive before it is reported and refunded.
_DELIVERY_ATTEMPTS = 5
# Chats whose last edit time is remembered: a time older than the gap means nothing, so a few thousand suffice.
_EDIT_TIMES_KEPT = 4096


class MidjourneyTracker:
    def __init__(
        self, bot: Bot, midjourney: Midjourney, repository: MidjourneyRepository, settings: Settings, i18n: I18n
    ) -> None:
        self._bot = bot
        self._i18n = i18n
        self._mj = midjourney
        self._repo = repository
        self._interval = settings.MJ_POLL_INTERVAL
        self._timeout = settings.MJ_TIMEOUT
        self._max_pixels = settings.MAX_IMAGE_PIXELS
        self._last_edit: LruCache[int, float] = LruCache(_EDIT_TIMES_KEPT)
        self._delivery_failures: dict[str, int] = {}
        self._slots = asyncio.Semaphore(_PARALLEL_TASKS)
        self._loop: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        resumed = await self._repo.resume_interrupted_deliveries()
        pending = await self._repo.count_pending()
        if pending or resumed:
            log.info("resuming %d midjourney tasks", pending)
        self._loop = asyncio.create_task(self._run(), name="midjourney-tracker")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop polling. The round in progress may finish first, for up to `grace` seconds: a picture cancelled
        between being sent and being recorded as sent would be sent again after the restart."""
        if self._loop is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._loop), grace)
        except TimeoutError:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        self._loop = None

    async def announce(self, row: MjTaskRow | NewMjTask, headline: str) -> None:
        """The task's status message, sent when the gateway accepted the job; progress edits it from then on."""
        sent = await self._bot.send_message(
            row.chat_id,
            _status_text(headline, row.prompt),
            message_thread_id=row.thread_id or None,
            reply_parameters=_reply_to(row),
        )
        await self._repo.set_status_message(row.task_id, sent.message_id, is_photo=False)
        await self._repo.record_shown(row.task_id, "", 0)

    async def chat_closed(self, chat_id: int) -> None:
        """The user blocked the bot (or it left the group): nobody will see these pictures; close the chat's
        tasks and give the uses back."""
        closed = await self._repo.fail_chat(chat_id)
        if closed:
            log.info("closed %d midjourney tasks of chat %s: the bot cannot write there", closed, chat_id)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except Exception:  # the poller must outlive any one bad round
                log.exception("midjourney poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def poll_once(self) -> None:
        rows = await self._repo.pending()
        if not rows:
            return
        found: dict[str, MjTask] = {}
        for start in range(0, len(rows), LIST_BATCH):
            batch = [row.task_id for row in rows[start : start + LIST_BATCH]]
            try:
                found.update((task.id, task) for task in await self._mj.list(batch))
            except MidjourneyError:
                # Logged by the client; the next interval asks again. The tasks of this batch still time out
                # (and are refunded) meanwhile: a gateway that keeps failing must not keep the uses.
                continue
        await asyncio.gather(*(self._follow(row, found.get(row.task_id)) for row in rows))

    async def _follow(self, row: MjTaskRow, task: MjTask | None) -> None:
        # Each task speaks the language of whoever asked for it (gather runs this in a task of its own).
        self._i18n.current_locale = row.locale
        async with self._slots:
            try:
                if task is not None and task.status == "SUCCESS":
                    await self._deliver_or_give_up(row, task)
                elif task is not None and task.status in ("FAILURE", "CANCEL"):
                    if task.fail_reason:
                        text = _("❌ Midjourney could not finish this picture: {reason}").format(
                            reason=escape(shorten(task.fail_reason, 200))
                        )
                    else:
                        text = _("❌ Midjourney could not finish this picture.")
                    await self._fail(row, text)
                elif time.time() - row.created_at > self._timeout:
                    minutes = max(1, round(self._timeout / 60))
                    await self._fail(
                        row,
                        _("⌛ Midjourney did not finish this picture within {minutes} min.").format(
                            minutes=minutes
                        ),
                    )
                elif task is not None and task.status == "MODAL":
                    await self._answer_modal(row, task)
                elif task is not None:
                    await self._show_progress(row, task)
            except TelegramForbiddenError:
                await self.chat_closed(row.chat_id)
            except (TelegramAPIError, MidjourneyError) as error:
                # Expected trouble (Telegram refusing a picture, the gateway failing): a line, and the next poll.
                log.warning("midjourney task %s: %s", row.task_id, type(error).__name__)
            except Exception:  # one task's trouble must not stop the others
                log.exception("midjourney task %s could not be followed", row.task_id)

    # --- progress ------------------------------------------------------------------------------------

    async def _show_progress(self, row: MjTaskRow, task: MjTask) -> None:
        shown = "" if task.status in _WAITING else task.status
        if (shown, task.progress) == (row.shown_status, row.shown_progress) or not self._may_edit(row.chat_id):
            return
        headline = (
            _("⏳ Queued…")
            if task.status in _WAITING
            else _("🎨 Drawing… {progress}%").format(progress=task.progress)
        )
        text = _status_text(headline, row.prompt)
        preview = await self._preview(task) if task.status == "IN_PROGRESS" else None
        if preview is not None:
            await self._show_preview(row, preview, text)
        elif row.status_message_id is None:
            await self.announce(row, headline)
        else:
            await self._edit_status(row, text)
        await self._repo.record_shown(row.task_id, shown, task.progress)

    def _may_edit(self, chat_id: int) -> bool:
        gap = _EDIT_GAP_PRIVATE if chat_id > 0 else _EDIT_GAP_GROUP
        now = time.monotonic()
        last = self._last_edit.get(chat_id)
        if last is not None and now - last < gap:
            return False  # shown at a later poll: the stored state still says what was last shown
        self._last_edit.put(chat_id, now)
        return True

    async def _preview(self, task: MjTask) -> bytes | None:
        if not task.image_url:
            return None
        try:
            image = await self._mj.download(task.image_url)
            return await asyncio.to_thread(as_telegram_photo, image, self._max_pixels)
        except (MidjourneyError, Refusal):
            return None  # a preview is a nicety; the next poll may get one

    async def _show_preview(self, row: MjTaskRow, image: bytes, caption: str) -> None:
        photo = BufferedInputFile(image, filename="preview.jpg")
        if row.shown_image and row.status_message_id is not None:
            media = InputMediaPhoto(media=photo, caption=caption)
            if await edited(
                self._bot.edit_message_media(media, chat_id=row.chat_id, message_id=row.status_message_id)
            ):
                return
        # A text message cannot become a photo (and a deleted one cannot be edited): send a new one.
        sent = await self._bot.send_photo(
            row.chat_id, photo, caption=caption, message_thread_id=row.thread_id or None,
            reply_parameters=_reply_to(row),
        )  # fmt: skip
        await self._delete(row.chat_id, row.status_message_id)
        await self._repo.set_status_message(row.task_id, sent.message_id, is_photo=True)

    async def _edit_status(self, row: MjTaskRow, text: str) -> None:
        assert row.status_message_id is not None
        if row.shown_image:
            edit = self._bot.edit_message_caption(
                chat_id=row.chat_id, message_id=row.status_message_id, caption=text
            )
        else:
            edit = self._bot.edit_message_text(text, chat_id=row.chat_id, message_id=row.status_message_id)
        if not await edited(edit):
            sent = await self._bot.send_message(
                row.chat_id, text, message_thread_id=row.thread_id or None, reply_parameters=_reply_to(row)
            )
            await self._repo.set_status_message(row.task_id, sent.message_id, is_photo=False)

    # --- endings -------------------------------------------------------------------------------------

    async def _deliver_or_give_up(self, row: MjTaskRow, task: MjTask) -> None:
        """Deliver a finished picture; one that fails to arrive several polls in a row (an image link that
        leads nowhere, a picture Telegram refuses) is reported and refunded rather than tried for ever, and one
        that is too large at once."""
        try:
            await self._deliver(row, task)
        except TelegramForbiddenError:
            raise
        except (MidjourneyTooLarge, PictureTooLarge):
            self._delivery_failures.pop(row.task_id, None)
            await self._fail(row, _("❌ Midjourney finished this picture, but it is larger than I accept."))
        except Exception:
            failures = self._delivery_failures[row.task_id] = self._delivery_failures.get(row.task_id, 0) + 1
            if failures < _DELIVERY_ATTEMPTS:
                raise
            del self._delivery_failures[row.task_id]
            log.warning("midjourney task %s could not be delivered %d times; giving up", row.task_id, failures)
            await self._fail(row, _("❌ Midjourney finished this picture, but it could not be delivered."))
        else:
            self._delivery_failures.pop(row.task_id, None)

    async def _deliver(self, row: MjTaskRow, task: MjTask) -> None:
        if not await self._repo.claim_delivery(row.task_id):
            return  # somebody else (an earlier round still running) is delivering it
        try:
            image = await asyncio.to_thread(
                as_telegram_photo, await self._mj.download(task.image_url), self._max_pixels
            )
            buttons = await self._repo.save_buttons(task.id, [(b.custom_id, b.label) for b in task.buttons])
            markup = keyboard([(button.key, button.label) for button in buttons])
            caption = escape(shorten(row.prompt, 1000)) or None
            upload = BufferedInputFile(image, filename="midjourney.jpg")
            send = self._bot.send_photo if len(image) <= TELEGRAM_PHOTO_LIMIT else self._bot.send_document
            sent: Message = await send(
                row.chat_id, upload, caption=caption, reply_markup=markup,
                message_thread_id=row.thread_id or None, reply_parameters=_reply_to(row),
            )  # fmt: skip
        except TelegramForbiddenError:
            raise
        except Exception:
            await self._repo.release_delivery(row.task_id)  # try again at the next poll
            raise
        # Sent: from here on it must be recorded as sent, whatever cancels this.
        await asyncio.shield(self._repo.mark_delivered(row.task_id, sent.message_id))
        await self._delete(row.chat_id, row.status_message_id)

    async def _fail(self, row: MjTaskRow, text: str) -> None:
        if not await self._repo.fail_and_refund(row.task_id):
            return
        message = text + "\n" + _("Your imagine use was given back.")
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

    async def _answer_modal(self, row: MjTaskRow, task: MjTask) -> None:
        """Some buttons (Custom Zoom, Vary Region) open a dialog; answer it with the picture's prompt."""
        if row.shown_status == _MODAL_ANSWERED:
            return  # answered already; the gateway has not moved on yet
        if not row.prompt:
            await self._fail(
                row, _("⚠️ This Midjourney button asks for a prompt, and this picture has none to give.")
            )
            return
        try:
            new_id = await self._mj.modal(task.id, row.prompt)
        except UserFacingError as error:
            await self._fail(row, f"⚠️ {escape(str(error.user_message))}")
            return
        if new_id != row.task_id:
            await self._repo.rename(row.task_id, new_id)
        await self._repo.record_shown(new_id, _MODAL_ANSWERED, task.progress)

    async def _delete(self, chat_id: int, message_id: int | None) -> None:
        if message_id is None:
            return
        with contextlib.suppress(TelegramBadRequest):
            await self._bot.delete_message(chat_id, message_id)


def _status_text(headline: str, prompt: str) -> str:
    return f"{headline}\n<i>{escape(shorten(prompt, 300))}</i>" if prompt else headline


def _reply_to(row: MjTaskRow | NewMjTask) -> ReplyParameters | None:
    if row.request_message_id is None:
        return None
    return ReplyParameters(message_id=row.request_message_id, allow_sending_without_reply=True)
