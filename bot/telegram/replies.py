"""Sending answers back: text split to Telegram's limits and HTML-escaped, pictures as photos or files."""

from __future__ import annotations

from aiogram.enums import ChatType
from aiogram.types import BufferedInputFile, Message, ReplyParameters

from bot.assistant import SpokenAnswer
from bot.media.images import TELEGRAM_PHOTO_LIMIT, Picture
from bot.telegram.text import CAPTION_LIMIT, escape, shorten, split_text, utf16_len


def reply_target(message: Message) -> ReplyParameters | None:
    """In a group an answer quotes the message it answers, so everyone sees whom it is for."""
    if message.chat.type == ChatType.PRIVATE:
        return None
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


async def answer_text(message: Message, text: str) -> None:
    """Send `text` to the message's chat (and topic) as one or more messages, each a valid HTML message."""
    target = reply_target(message)
    for part in split_text(text):
        await message.answer(escape(part), reply_parameters=target)
        target = None  # only the first part needs to point at the question


async def answer_spoken(message: Message, answer: SpokenAnswer, with_text: bool = False) -> None:
    """A voice message with the words under it; with `with_text`, or when they do not fit a caption, the whole
    text follows as a message."""
    fits = utf16_len(answer.said) <= CAPTION_LIMIT
    caption = None if with_text else escape(shorten(answer.said, CAPTION_LIMIT)) or None
    await message.answer_voice(
        BufferedInputFile(answer.clip.ogg, filename="answer.ogg"),
        duration=answer.clip.whole_seconds,
        caption=caption,
        reply_parameters=reply_target(message),
    )
    if with_text or not fits:
        await answer_text(message, answer.said)


async def answer_picture(message: Message, picture: Picture, caption: str | None = None) -> None:
    """A picture as a photo replying to the request, or as a file when it is over Telegram's photo limit."""
    upload = BufferedInputFile(picture.data, filename=picture.filename)
    target = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    if len(picture.data) <= TELEGRAM_PHOTO_LIMIT:
        await message.answer_photo(upload, caption=caption, reply_parameters=target)
    else:
        await message.answer_document(upload, caption=caption, reply_parameters=target)
