"""Sending the model's text back: split to Telegram's limits and HTML-escaped."""

from __future__ import annotations

from aiogram.types import Message

from bot.telegram_text import escape, split_text


async def answer_text(message: Message, text: str) -> None:
    """Send `text` to the message's chat (and topic) as one or more messages, each a valid HTML message."""
    for part in split_text(text):
        await message.answer(escape(part))
