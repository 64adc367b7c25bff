"""The fault suite: the gateway failing in every way on every endpoint, Telegram flood control and blocked users,
/cancel, SIGTERM and kill -9, and nonsense input. Every failure is answered in words and never charged; after the
module the database is intact and its usage ledger equals the successful turns exactly."""

from __future__ import annotations

import asyncio
import collections
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from testkit.bot_process import BotProcess
from testkit.doubles.gateway import GatewayCall, GatewayDouble, Rule, last_user_text_contains
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import TelegramDouble
from testkit.doubles.telegram_spec import TelegramSpec
from testkit.media import make_audio_file, make_png, make_voice_note
from tests.e2e.harness import API_KEY, BOT_TOKEN, StartBot, assert_no_secrets, new_person
from tests.e2e.steps import Conversation

FAULT_SETTINGS = {
    "CHAT_TIMEOUT": "2",
    "VOICE_TIMEOUT": "3",
    "IMAGE_TIMEOUT": "3",
    "GATEWAY_RETRIES": "1",
    "MJ_POLL_INTERVAL": "0.3",
    "MAX_VOICE_SECONDS": "600",
}
_tones = itertools.count(900)
_colours = itertools.count(1)

# Uses that succeeded in this module, by kind: the database's ledger must say exactly the same at the end.
succeeded: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
async def fault_bot(gateway: GatewayDouble, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BotProcess]:
    telegram = TelegramDouble(BOT_TOKEN, TelegramSpec.load())
    await telegram.start()
    process = BotProcess(
        tmp_path_factory.mktemp("fault-bot"), telegram, gateway, BOT_TOKEN, API_KEY, FAULT_SETTINGS
    )
    await process.start()
    yield process
    assert await process.stop() == 0
    await telegram.stop()
    assert_no_secrets(process, telegram)
    assert not telegram.violations, telegram.violations
    with sqlite3.connect(process.database_path) as database:
        assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ledger = dict(database.execute("SELECT kind, SUM(count) FROM usage GROUP BY kind").fetchall())
        reservations = database.execute("SELECT COUNT(*) FROM reservations").fetchone()[0]
    assert {kind: count for kind, count in ledger.items() if count} == dict(succeeded)
    assert reservations == 0


@pytest.fixture
def someone(fault_bot: BotProcess) -> Callable[..., Conversation]:
    def make(first_name: str = "Ann") -> Conversation:
        return Conversation(fault_bot.telegram, *new_person(fault_bot.telegram, first_name))

    return make


# --- the gateway failing ------------------------------------------------------------------------------

ENDPOINTS = ["transcribe", "speak", "chat", "look", "draw", "edit", "imagine"]
FAULTS = ["status-500", "status-429", "timeout", "malformed-json", "missing-fields", "bad-base64", "refused-file"]
# Which faults make sense where: base64 comes back only with audio and images; only Whisper reads a file.
_APPLIES = {
    "bad-base64": {"speak", "draw", "edit"},
    "refused-file": {"transcribe"},
}
CASES = [(e, f) for e in ENDPOINTS for f in FAULTS if e in _APPLIES.get(f, set(ENDPOINTS))]
_PATHS = {
    "transcribe": "/audio/transcriptions",
    "speak": "/chat/completions",
    "chat": "/chat/completions",
    "look": "/chat/completions",
    "draw": "/images/generations",
    "edit": "/images/edits",
    "imagine": "/mj/submit/imagine",
}
_KINDS = {"transcribe": "voice", "speak": "voice", "chat": "chat", "look": "vision", "draw": "draw",
          "edit": "edit", "imagine": "imagine"}  # fmt: skip


def _fault(rule: Rule, endpoint: str, fault: str) -> None:
    if fault == "status-500":
        rule.reply_status(500, "upstream secret detail")
    elif fault == "status-429":
        rule.reply_status(429, "slow down, secret detail", headers={"Retry-After": "0"})
    elif fault == "timeout":
        rule.delay(20).reply_status(500, "too late")
    elif fault == "malformed-json":
        rule.reply_raw(200, b'{"id": "x", "choices": [{"message": ', "application/json")
    elif fault == "missing-fields":
        rule.reply_json(200, {"object": "nothing useful"})
    elif fault == "refused-file":
        rule.reply_status(400, "Invalid file format. Supported formats: ['flac', 'mp3', ...]")
    elif endpoint == "speak":
        rule.reply_json(200, {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": None,
             "audio": {"id": "a", "data": "%%%not base64%%%", "expires_at": 1, "transcript": "hi"}}}]})  # fmt: skip
    else:
        rule.reply_json(200, {"created": 1, "data": [{"b64_json": "%%%not base64%%%"}]})


@pytest.mark.parametrize(("endpoint", "fault"), CASES, ids=[f"{e}-{f}" for e, f in CASES])
async def test_every_gateway_fault_gets_words_and_no_charge(
    fault_bot: BotProcess, gateway: GatewayDouble, someone, endpoint: str, fault: str
) -> None:
    me = someone()
    marker = f"fault {endpoint} {fault} {next(_colours)}"
    path = _PATHS[endpoint]
    matches: dict[str, Callable[[GatewayCall], bool]] = {
        "chat": last_user_text_contains(marker),
        "look": last_user_text_contains(marker),
        "speak": last_user_text_contains(marker),
        "draw": lambda call: marker in (call.json or {}).get("prompt", ""),
        "edit": lambda call: marker in str(call.fields.get("prompt", "")),
        "imagine": lambda call: marker in (call.json or {}).get("prompt", ""),
    }
    note = make_voice_note(1.0, freq=next(_tones))
    gateway.set_transcript(note, marker)
    if endpoint == "transcribe":
        matches["transcribe"] = lambda call: call.uploads("file")[0].data == note
    rule = gateway.when(path, matches[endpoint])
    _fault(rule, endpoint, fault)

    if endpoint in ("transcribe", "speak"):
        me.send_voice(note, duration=1)
    elif endpoint == "chat":
        me.send_text(marker)
    elif endpoint == "look":
        me.send_photo(make_png(30, 30, (next(_colours) % 256, 1, 2)), caption=marker)
    elif endpoint == "edit":
        me.send_photo(make_png(30, 30, (next(_colours) % 256, 3, 4)), caption=f"/edit {marker}")
    else:
        me.send_text(f"/{endpoint} {marker}")

    answer = await me.reply_text(timeout=25)
    assert rule.hits >= 1  # the scripted fault really was what the bot met
    assert answer and "{" not in answer and "secret detail" not in answer and "Traceback" not in answer
    assert not me.calls_since("sendVoice") and not me.calls_since("sendPhoto")
    assert (await me.quota())[_KINDS[endpoint]][0] == 0


async def test_a_429_with_retry_after_is_waited_out_and_then_answered(
    fault_bot: BotProcess, gateway: GatewayDouble, someone
) -> None:
    me = someone()
    gateway.when("/chat/completions", last_user_text_contains("patience please"), times=1).reply_status(
        429, "rate limited", headers={"Retry-After": "1"}
    )
    me.send_text("patience please")
    assert await me.reply_text() == "echo: patience please"
    attempts = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains("patience please")(c)]
    assert len(attempts) == 2 and attempts[1].at - attempts[0].at >= 0.9
    succeeded["chat"] += 1


# --- Telegram failing ---------------------------------------------------------------------------------


async def test_flood_control_on_send_delays_the_message_but_delivers_it(fault_bot: BotProcess, someone) -> None:
    me = someone()
    telegram = fault_bot.telegram
    telegram.fail("sendMessage", error_code=429, retry_after=1, match=lambda call: call.chat_id == me.chat_id)
    me.send_text("hello through the flood")
    delivered = await me.reply("sendMessage")
    assert delivered.result["text"] == "echo: hello through the flood"
    refused = [c for c in telegram.calls_to("sendMessage", me.chat_id) if c.failed]
    assert len(refused) == 1 and delivered.at - refused[0].at >= 0.9
    succeeded["chat"] += 1


async def test_flood_control_on_progress_edits_does_not_lose_the_picture(
    fault_bot: BotProcess, midjourney: MidjourneyDouble, someone
) -> None:
    me = someone()
    telegram = fault_bot.telegram
    midjourney.script("flooded lighthouse", "slow", times=1, step_seconds=0.8)
    for method in ("editMessageText", "editMessageMedia", "editMessageCaption", "sendPhoto"):
        telegram.fail(method, error_code=429, retry_after=1, match=lambda call: call.chat_id == me.chat_id)
    me.send_text("/imagine a flooded lighthouse")
    result = await telegram.wait_for(
        lambda c: (
            c.method == "sendPhoto" and c.chat_id == me.chat_id and not c.failed and "reply_markup" in c.params
        ),
        timeout=30,
    )
    assert result.files["photo"].data
    assert any(c.failed and c.error_code == 429 for c in telegram.sent_to(me.chat_id))
    succeeded["imagine"] += 1


async def test_a_user_who_blocked_the_bot_breaks_nothing_and_their_tasks_are_closed(
    fault_bot: BotProcess, midjourney: MidjourneyDouble, someone
) -> None:
    me, other = someone(), someone()
    telegram = fault_bot.telegram
    midjourney.script("blocked renders", "stuck", times=1)
    me.send_text("/imagine blocked renders forever")
    await me.reply("sendMessage")
    [task_id] = [t.id for t in midjourney.tasks.values() if t.prompt == "blocked renders forever"]

    telegram.fail("sendMessage", error_code=403, description="Forbidden: bot was blocked by the user",
                  times=1000, match=lambda call: call.chat_id == me.chat_id)  # fmt: skip
    for method in ("editMessageText", "sendPhoto", "editMessageMedia", "editMessageCaption"):
        telegram.fail(method, error_code=403, description="Forbidden: bot was blocked by the user",
                      times=1000, match=lambda call: call.chat_id == me.chat_id)  # fmt: skip
    me.send_text("are you there?")
    midjourney.finish_now(task_id)  # the picture is done, and cannot be delivered

    other.send_text("still serving others?")
    assert await other.reply_text() == "echo: still serving others?"
    succeeded["chat"] += 1  # the blocked user's answer could not be delivered: not charged
    await asyncio.sleep(1.5)  # a few polls
    asked_after = [ids for at, ids in midjourney.list_calls[-3:]]
    assert all(task_id not in ids for ids in asked_after)  # the task was closed: no longer polled
    log = fault_bot.log_text()
    assert "Traceback" not in log


# --- in-flight work: one heavy request per user, /cancel ---------------------------------------------


async def test_cancel_stops_the_request_in_flight_uncharged(
    fault_bot: BotProcess, gateway: GatewayDouble, someone
) -> None:
    me = someone()
    note = make_voice_note(1.0, freq=next(_tones))
    gateway.set_transcript(note, "a slow question to cancel")
    gateway.when("/chat/completions", last_user_text_contains("a slow question to cancel")).delay(
        2.5
    ).reply_audio()
    me.send_voice(note, duration=1)
    await gateway.wait_for(lambda c: last_user_text_contains("a slow question to cancel")(c))

    me.send_voice(make_voice_note(1.0, freq=next(_tones)), duration=1)
    assert "still working on your last request" in await me.reply_text()
    me.send_text("/cancel")
    assert await me.reply_text() == "Stopped your voice message. Nothing was charged."
    await asyncio.sleep(3)  # the gateway would have answered by now
    assert not me.calls_since("sendVoice")
    assert (await me.quota())["voice"][0] == 0
    me.send_text("/cancel")
    assert "nothing to cancel" in await me.reply_text()


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda me: me.send_voice(make_voice_note(1.0, freq=950), duration=0), "empty"),
        (lambda me: me.send_voice(b"\x00garbage that is no ogg at all" * 10, duration=3), "damaged"),
        (lambda me: me.send_audio(make_audio_file(1.0), 30, file_size=21 * 2**20), "20 MB"),
        (lambda me: me.send_audio(b"nonsense", 3, file_name="x.wma", mime_type="audio/x-ms-wma"), "format"),
        (lambda me: me.send_document(b"PK\x03\x04zip", "archive.zip", "application/zip"), "pictures"),
        (lambda me: me.telegram.send_sticker(me.user, me.chat), "can't use that"),
        (lambda me: me.telegram.send_location(me.user, me.chat), "can't use that"),
        (lambda me: me.telegram.send_contact(me.user, me.chat), "can't use that"),
        (lambda me: me.telegram.send_poll(me.user, me.chat), "can't use that"),
        (lambda me: me.send_text("/frobnicate now"), "don't know that command"),
        (lambda me: me.send_text("/draw \u00a0 \t "), "/draw <description>"),
        (lambda me: me.send_text("/imagine \u3000"), "/imagine <prompt>"),
        (lambda me: me.send_text("/edit    "), "/edit <change>"),
    ],
    ids=[
        "voice-0s",
        "voice-corrupt",
        "audio-21MB",
        "audio-wma",
        "zip",
        "sticker",
        "location",
        "contact",
        "poll",
        "unknown-command",
        "draw-blank",
        "imagine-blank",
        "edit-blank",
    ],  # fmt: skip
)
async def test_bad_input_gets_a_clear_answer_and_calls_nothing(
    fault_bot: BotProcess, gateway: GatewayDouble, someone, send: Callable[[Conversation], Any], expected: str
) -> None:
    me = someone()
    before = len(gateway.calls)
    send(me)
    assert expected in await me.reply_text()
    await fault_bot.telegram.wait_idle(0.3)
    assert len(gateway.calls) == before


async def test_html_in_prompts_and_banned_words_shows_as_typed(
    fault_bot: BotProcess, midjourney: MidjourneyDouble, someone
) -> None:
    me = someone()
    midjourney.script("<b>bold</b>", "banned", times=1, word="<script>&")
    me.send_text("/imagine a <b>bold</b> & <i>risky</i> prompt")
    assert "“<script>&” is not allowed" in await me.reply_text()
    me.send_text("/imagine tags <u>under</u> & > fine")
    status = await me.reply("sendMessage")
    assert "tags <u>under</u> & > fine" in status.result["text"]
    result = await fault_bot.telegram.wait_for(
        lambda c: c.method == "sendPhoto" and c.chat_id == me.chat_id and "reply_markup" in c.params, timeout=20
    )
    assert result.result["caption"] == "tags <u>under</u> & > fine"
    succeeded["imagine"] += 1


# --- shutdown and crash -------------------------------------------------------------------------------


async def test_sigterm_lets_the_turn_in_flight_finish_then_takes_no_more_updates(
    start_bot: StartBot, gateway: GatewayDouble, tmp_path: Path
) -> None:
    process = await start_bot(tmp_path)
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    gateway.when("/chat/completions", last_user_text_contains("finish me first")).delay(1.5).reply_text("finished")
    me.send_text("finish me first")
    await gateway.wait_for(last_user_text_contains("finish me first"))

    process.terminate()  # SIGTERM, as a service manager stops the bot
    await asyncio.sleep(0.3)
    late = me.send_text("sent after the stop")
    assert (await me.reply_text(timeout=10)) == "finished"
    assert await process.stop() == 0
    assert "sent after the stop" not in str([c.params for c in me.calls_since()])

    await start_bot(tmp_path)  # the update sent during the stop is not lost: the next run answers it
    assert late["message"]["text"] == "sent after the stop"
    me.since = 0
    await telegram.wait_for(
        lambda c: c.method == "sendMessage" and c.params.get("text") == "echo: sent after the stop"
    )


async def test_kill_during_a_voice_turn_loses_nothing_and_charges_nothing(
    start_bot: StartBot, gateway: GatewayDouble, tmp_path: Path
) -> None:
    process = await start_bot(tmp_path)
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    me.send_text("remember: the code word is heron")
    await me.reply_text()

    note = make_voice_note(1.0, freq=next(_tones))
    gateway.set_transcript(note, "killed mid turn")
    gateway.when("/chat/completions", last_user_text_contains("killed mid turn")).delay(5).reply_audio()
    me.send_voice(note, duration=1)
    await gateway.wait_for(last_user_text_contains("killed mid turn"))
    await process.kill()

    await start_bot(tmp_path)
    # One process on SQLite gives its uses in flight back as it starts; on PostgreSQL (WENWEN_TEST_DATABASE) the
    # killed replica's run out within their lifetime once nobody keeps them alive.
    deadline = time.monotonic() + 25
    while (used := (await me.quota())["voice"]) != (0, "20") and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
    assert used == (0, "20")
    me.send_text("what was the code word?")
    await me.reply_text()
    request = await gateway.wait_for(last_user_text_contains("what was the code word?"))
    assert request.json["messages"][1]["content"] == "remember: the code word is heron"
    with sqlite3.connect(process.database_path) as database:
        assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
