"""What a person sees of the tools run in their turn, in Telegram: a status line while a tool works, the
picture it drew (replying to them), a refusal in words, and the sources of a search under the answer."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Sequence

from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import LinkPreviewOptions, Message

from bot.assistant import Asked
from bot.clients.gateway_results import Citation
from bot.core.actors import Actor
from bot.core.i18n import _
from bot.media.images import Picture
from bot.midjourney.jobs import Origin
from bot.telegram.context import conversation_key, speaker_name
from bot.telegram.replies import answer_picture, reply_target
from bot.telegram.text import escape, shorten
from bot.tools import ToolBelt


class TelegramToolView:
    """The ToolView of one message's turn: everything goes to that message's chat (and topic)."""

    def __init__(self, message: Message) -> None:
        self._message = message

    async def show_status(self, text: str) -> object:
        with contextlib.suppress(TelegramAPIError):  # a status line is a nicety
            return await self._message.answer(
                escape(shorten(text, 300)), reply_parameters=reply_target(self._message)
            )
        return None

    async def clear_status(self, handle: object) -> None:
        if isinstance(handle, Message):
            with contextlib.suppress(TelegramBadRequest):
                await handle.delete()

    async def send_picture(self, picture: Picture, caption: str) -> None:
        await answer_picture(self._message, picture, caption=escape(shorten(caption)))

    async def tell(self, text: str) -> None:
        await self._message.answer(escape(text), reply_parameters=reply_target(self._message))


async def send_sources(message: Message, sources: Sequence[Citation]) -> None:
    """The links a searched answer stands on, in a message right after it."""
    if not sources:
        return
    links = [
        f'🔗 <a href="{html.escape(source.url, quote=True)}">{escape(shorten(source.title, 120))}</a>'
        for source in sources[:8]
    ]
    await message.answer(
        _("Sources:") + "\n" + "\n".join(links), link_preview_options=LinkPreviewOptions(is_disabled=True)
    )


def asked_with_tools(message: Message, actor: Actor, question: str) -> Asked:
    """A question asked in this message, with the tools of a text or voice turn: the speaker pays for them, and
    their pictures and Midjourney jobs go to the message's chat (and topic), replying to it."""
    key = conversation_key(message)
    origin = Origin(
        user_id=actor.id, chat_id=message.chat.id, thread_id=key.thread_id, message_id=message.message_id
    )
    belt = ToolBelt(actor_id=actor.id, origin=origin, view=TelegramToolView(message))
    return Asked(key=key, question=question, speaker=speaker_name(message), belt=belt)
