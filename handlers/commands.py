"""/start, /help, /reset and /cancel."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.conversations import Conversations
from bot.core.actors import Actor
from bot.core.i18n import _, __
from bot.inflight import InFlight
from bot.telegram.context import conversation_key

GUIDE = __("""<b>Hi! I'm your voice-first AI assistant.</b>

🎙 <b>Send a voice note</b> (or an audio file, or a round video) and I answer with a voice message, its words underneath.
💬 <b>Type</b> and I answer in text. I remember our conversation until you say /reset.
🖼 <b>Send a photo</b> with a question and I look at it.
✨ <b>Just ask</b>, typing or speaking: “draw a fox in the snow”, “what's the weather in Beijing tomorrow?”, “remember that my daughter is called Mia” — I draw, imagine, search the web and remember.

<b>Commands</b>
/imagine &lt;prompt&gt; — a Midjourney picture, with U/V/🔄 buttons under the result
/draw &lt;prompt&gt; — draw a picture
/edit &lt;prompt&gt; — as a photo's caption, or a reply to a photo: change it
/blend — as the caption of an album of 2–5 photos: blend them
/seed — as a reply to a Midjourney picture: its seed
/search &lt;query&gt; — search the web; the answer comes with its sources
/memory — what I remember about you; /forget &lt;n|all&gt; — forget it
/reset — forget our conversation
/quota — what you have used today
/cancel — stop the request I'm working on
/settings — reply voice, and whether I answer in voice or text
/model — which AI model answers you
/lang — English or 中文
/help — this guide

In groups, mention me or reply to my messages.""")


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_guide, CommandStart())
    router.message.register(show_guide, Command("help"))
    router.message.register(reset_conversation, Command("reset"))
    router.message.register(cancel_request, Command("cancel"))
    return router


async def show_guide(message: Message) -> None:
    await message.answer(str(GUIDE))


async def reset_conversation(message: Message, conversations: Conversations) -> None:
    await conversations.forget(conversation_key(message))
    await message.answer(_("Done: I have forgotten our conversation. What shall we talk about?"))


async def cancel_request(message: Message, actor: Actor, inflight: InFlight) -> None:
    """The stopped request itself tells the user (it knows what it gave back); here only the empty case."""
    if await inflight.cancel_everywhere(actor.id) is None:
        await message.answer(_("There is nothing to cancel: I'm not working on anything for you."))
