"""A person's side of a conversation with the bot, through the Telegram double: say something, await the answer."""

from __future__ import annotations

import re
import time
from typing import Any

from testkit.doubles.telegram_api import Call, TelegramDouble


class Conversation:
    """One user in one chat. Each `send_*` remembers when it happened, so `reply` finds only what came after."""

    def __init__(self, telegram: TelegramDouble, user: dict[str, Any], chat: dict[str, Any]) -> None:
        self.telegram = telegram
        self.user = user
        self.chat = chat
        self.since = time.monotonic()

    @property
    def chat_id(self) -> int:
        return self.chat["id"]

    def _sent(self) -> None:
        self.since = time.monotonic()

    def send_text(self, text: str, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_text(self.user, self.chat, text, **options)

    def send_voice(self, data: bytes, duration: int, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_voice(self.user, self.chat, data, duration, **options)

    def send_audio(self, data: bytes, duration: int, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_audio(self.user, self.chat, data, duration, **options)

    def send_video_note(self, data: bytes, duration: int, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_video_note(self.user, self.chat, data, duration, **options)

    def send_photo(self, data: bytes, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_photo(self.user, self.chat, data, **options)

    def send_document(self, data: bytes, file_name: str, mime_type: str, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_document(self.user, self.chat, data, file_name, mime_type, **options)

    def calls_since(self, method: str | None = None) -> list[Call]:
        return [
            call
            for call in self.telegram.sent_to(self.chat_id)
            if call.at >= self.since and (method is None or call.method == method) and not call.failed
        ]

    async def reply(self, method: str = "sendMessage", timeout: float = 15.0, nth: int = 0) -> Call:
        """The bot's `nth` successful `method` call to this chat since the last thing sent."""
        since = self.since

        def matches(call: Call) -> bool:
            if call.method != method or call.chat_id != self.chat_id or call.failed or call.at < since:
                return False
            earlier = [c for c in self.calls_since(method) if c.at < call.at]
            return len(earlier) == nth

        return await self.telegram.wait_for(matches, timeout)

    async def reply_text(self, timeout: float = 15.0) -> str:
        """The plain text (HTML parsed away, as the user sees it) of the next message."""
        call = await self.reply("sendMessage", timeout)
        return call.result["text"]

    async def quota(self) -> dict[str, tuple[int, str]]:
        """Ask /quota and read the table: kind -> (used, limit as shown)."""
        self.send_text("/quota")
        text = await self.reply_text()
        rows = re.findall(r"^(chat|voice|vision|edit|draw|imagine|search)\s+(\d+)\s+(\S+)\s*$", text, re.MULTILINE)
        assert len(rows) == 7, f"/quota did not show all seven kinds:\n{text}"
        return {kind: (int(used), limit) for kind, used, limit in rows}


def _button(message: dict[str, Any], starts: str) -> str:
    rows = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for row in rows for b in row if b["text"].lstrip("✓ ").startswith(starts))


async def choose_setting(me: Conversation, menu_label: str, choice_label: str) -> None:
    """Open /settings, open a menu, pick a choice; every press answered."""
    telegram = me.telegram
    me.send_text("/settings")
    menu = await me.reply("sendMessage")
    press = telegram.press_button(me.user, menu.result, _button(menu.result, menu_label))
    await telegram.wait_for_method("answerCallbackQuery", callback_query_id=press["callback_query"]["id"])
    await telegram.wait_idle(0.3)
    shown = telegram.messages[(me.chat_id, menu.result["message_id"])]
    press = telegram.press_button(me.user, shown, _button(shown, choice_label))
    answer = await telegram.wait_for_method("answerCallbackQuery", callback_query_id=press["callback_query"]["id"])
    assert answer.params.get("text") == "Saved."
    await telegram.wait_idle(0.3)
