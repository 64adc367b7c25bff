"""Self-tests of the Telegram Bot API double, driven by a real aiogram Bot (validation runs only with the spec file)."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from testkit.doubles.telegram_api import TelegramDouble
from testkit.doubles.telegram_spec import EntityParseError, TelegramSpec, parse_entities

TOKEN = "123456:TEST-token_for-the-double"
SPEC = TelegramSpec.load()  # None without the spec file: the double then runs without validation
USER_ID = 4242


@pytest_asyncio.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    telegram = TelegramDouble(TOKEN, SPEC)
    await telegram.start()
    yield telegram
    await telegram.stop()


@pytest_asyncio.fixture
async def bot(double: TelegramDouble) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(double.base_url))
    telegram_bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    yield telegram_bot
    # Close the aiohttp client directly: session.close() also sleeps 250 ms for TLS, and this is plain HTTP.
    await (await session.create_session()).close()


def jpeg_header(width: int, height: int) -> bytes:
    """Just enough of a JPEG (SOI, then a baseline start-of-frame) for its size to be read."""
    frame = struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + frame + b"\xff\xd9"


@pytest.mark.asyncio
async def test_get_me_is_the_bot(bot: Bot, double: TelegramDouble) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (7000000001, "WenwenTestBot", True)
    assert me.can_read_all_group_messages is False
    assert double.calls_to("getMe")[0].result["supports_inline_queries"] is False
    assert double.violations == []


@pytest.mark.asyncio
async def test_html_message_round_trips_with_keyboard_and_button_press(bot: Bot, double: TelegramDouble) -> None:
    user, chat = double.private_chat(USER_ID, username="ann")
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go:1")]])
    sent = await bot.send_message(USER_ID, "<b>Hi</b> &lt;3 &amp; more", reply_markup=keyboard)

    assert sent.text == "Hi <3 & more"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [("bold", 0, 2)]
    assert sent.chat.type == "private" and sent.from_user and sent.from_user.is_bot
    call = await double.wait_for_method("sendMessage", chat_id=USER_ID, parse_mode="HTML")
    assert call.params["text"] == "<b>Hi</b> &lt;3 &amp; more"
    assert call.result["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "go:1"

    press = double.press_button(user, call.result, "go:1")
    assert press["callback_query"]["message"]["message_id"] == sent.message_id
    query_id = press["callback_query"]["id"]
    assert double.unanswered_callbacks == [query_id]
    assert await bot.answer_callback_query(query_id) is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(ValueError, match="no button"):
        double.press_button(user, call.result, "nope")
    assert chat["id"] == USER_ID and double.violations == []


@pytest.mark.asyncio
async def test_send_voice_records_the_upload_and_it_downloads_again(bot: Bot, double: TelegramDouble) -> None:
    audio = b"OggS" + bytes(range(200))
    message = await bot.send_voice(
        USER_ID, BufferedInputFile(audio, "voice.ogg"), duration=3, caption="<i>said</i>"
    )

    call = double.calls_to("sendVoice", chat_id=USER_ID)[0]
    assert call.files["voice"].data == audio and call.files["voice"].filename == "voice.ogg"
    assert call.params["duration"] == 3 and call.params["voice"].startswith("attach://")
    assert message.voice and (message.voice.duration, message.voice.mime_type) == (3, "audio/ogg")
    assert message.caption == "said"

    downloaded = await bot.download(message.voice.file_id)
    assert downloaded is not None and downloaded.read() == audio
    assert double.get_file_calls == 1 and len(double.downloads) == 1
    assert double.violations == []


@pytest.mark.asyncio
async def test_photo_sizes_read_the_image_and_keep_a_distinct_thumbnail(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_photo(USER_ID, BufferedInputFile(jpeg_header(640, 480), "draw.jpg"))
    assert sent.photo and (sent.photo[-1].width, sent.photo[-1].height) == (640, 480)
    assert sent.photo[0].width < 100

    user, chat = double.private_chat(USER_ID)
    update = double.send_photo(user, chat, jpeg_header(1280, 720), caption="/edit make it blue")
    sizes = update["message"]["photo"]
    assert (sizes[-1]["width"], sizes[-1]["height"]) == (1280, 720)
    full = await bot.download(sizes[-1]["file_id"])
    thumb = await bot.download(sizes[0]["file_id"])
    assert full is not None and full.read() == jpeg_header(1280, 720)
    assert thumb is not None and thumb.read() != jpeg_header(1280, 720)
    assert update["message"]["caption_entities"] == [{"type": "bot_command", "offset": 0, "length": 5}]
    assert double.violations == []


@pytest.mark.asyncio
async def test_calls_telegram_refuses_are_violations_and_bad_requests(bot: Bot, double: TelegramDouble) -> None:
    voice = BufferedInputFile(b"OggS", "voice.ogg")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER_ID, "1 < 2 & 3")  # unescaped user text in HTML mode

    if SPEC is None:  # validation off: only the HTML parse (part of building the message) refuses
        await bot.send_voice(USER_ID, voice, caption="x" * 1025)
        await bot(SendMessage(chat_id=USER_ID, text="hi", reply_to_message_id=1))
        assert double.violations == []
        return

    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_voice(USER_ID, voice, caption="<b>" + "x" * 1025 + "</b>")
    await bot.send_voice(USER_ID, voice, caption="<b>" + "x" * 1024 + "</b>")  # tags do not count
    with pytest.raises(TelegramBadRequest, match='unknown parameter "reply_to_message_id"'):
        await bot(SendMessage(chat_id=USER_ID, text="hi", reply_to_message_id=1))  # gone from the spec
    long_data = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="é" * 33)]])
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER_ID, "pick", reply_markup=long_data)

    assert len(double.violations) == 4
    assert all(v.startswith(("sendMessage: ", "sendVoice: ")) for v in double.violations)
    assert [c.failed for c in double.calls_to("sendVoice")] == [True, False]


@pytest.mark.asyncio
async def test_get_updates_long_polls_and_confirms_by_offset(bot: Bot, double: TelegramDouble) -> None:
    user, chat = double.private_chat(USER_ID)
    first = double.send_text(user, chat, "/start@WenwenTestBot hi @someone")
    assert first["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 20},
        {"type": "mention", "offset": 24, "length": 8},
    ]
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    assert [u.update_id for u in updates] == [first["update_id"]] and time.monotonic() - started < 1

    poll = asyncio.create_task(bot.get_updates(offset=first["update_id"] + 1, timeout=5))
    await asyncio.sleep(0.3)
    assert not poll.done()  # nothing new: the poll waits
    second = double.send_text(user, chat, "hello")
    started = time.monotonic()
    updates = await poll
    assert [u.update_id for u in updates] == [second["update_id"]] and time.monotonic() - started < 1
    assert double.get_updates_calls == 2 and double.sent_to(USER_ID) == []
    assert double.violations == []


@pytest.mark.asyncio
async def test_faults_answer_like_telegram_and_are_recorded(bot: Bot, double: TelegramDouble) -> None:
    double.fail("sendMessage", error_code=429, retry_after=1)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER_ID, "hi")
    assert caught.value.retry_after == 1
    double.fail("sendMessage", error_code=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(USER_ID, "hi")
    await bot.send_message(USER_ID, "hi")
    assert [c.failed for c in double.calls_to("sendMessage")] == [True, True, False]
    assert double.calls_to("sendMessage")[0].error_code == 429


@pytest.mark.asyncio
async def test_edits_need_a_bot_message_and_a_change(bot: Bot, double: TelegramDouble) -> None:
    sent = await bot.send_message(USER_ID, "working…")
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="done", chat_id=USER_ID, message_id=sent.message_id + 5)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="working…", chat_id=USER_ID, message_id=sent.message_id)
    edited = await bot.edit_message_text(text="<i>done</i>", chat_id=USER_ID, message_id=sent.message_id)
    assert not isinstance(edited, bool) and edited.text == "done" and edited.edit_date


@pytest.mark.asyncio
async def test_big_files_are_refused_and_never_downloaded(bot: Bot, double: TelegramDouble) -> None:
    user, chat = double.private_chat(USER_ID)
    update = double.send_voice(user, chat, b"OggS", duration=900, file_size=25 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(update["message"]["voice"]["file_id"])
    assert double.get_file_calls == 1 and double.downloads == []


@pytest.mark.asyncio
async def test_wrong_token_unknown_method_and_wait_timeout(double: TelegramDouble) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{double.base_url}/bot1:wrong/getMe") as response:
            assert response.status == 401 and (await response.json())["description"] == "Unauthorized"
        async with http.post(f"{double.base_url}/bot{TOKEN}/getMee") as response:
            assert response.status == (404 if SPEC else 200)
        async with http.get(f"{double.base_url}/file/bot{TOKEN}/voice/nothing.oga") as response:
            assert response.status == 404
    with pytest.raises(AssertionError, match="no matching Telegram call"):
        await double.wait_for_method("sendMessage", timeout=0.1)


@pytest.mark.skipif(SPEC is None, reason="shape checks need the spec file")
def test_objects_the_double_sends_are_checked() -> None:
    assert SPEC is not None
    assert SPEC.validate_object("Update", {"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}}}) == [
        "Update.message: required field message_id of Message is missing",
        "Update.message: required field date of Message is missing",
    ]
    assert SPEC.validate_object("Chat", {"id": 1, "type": "privat"})
    assert SPEC.validate_result("getFile", {"file_id": "a", "file_unique_id": "b"}) == []


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<blink>x</blink>", 'Unsupported start tag "blink" at byte offset 0'),
        ("é < ü", 'Unsupported start tag "" at byte offset 3'),
        ("AT&T", 'Character "&" at byte offset 2'),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_html_that_telegram_refuses(html: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=error.replace("(", r"\(")):
        parse_entities(html, "HTML")


def test_html_entities_use_utf16_offsets() -> None:
    html = '😀 <a href="https://x.org/?a=1&amp;b=2">link</a> <tg-spoiler>s</tg-spoiler>'
    text, entities = parse_entities(html, "HTML")
    assert text == "😀 link s"
    assert entities == [
        {"type": "text_link", "offset": 3, "length": 4, "url": "https://x.org/?a=1&b=2"},
        {"type": "spoiler", "offset": 8, "length": 1},
    ]
