"""Hostile input, as a member of a public group with a modified client would send it: picture bombs, recordings
that lie about their length, answers that hang, forged webhook requests. The bot stays up and responsive,
answers in words, and charges nothing for what it refused."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from testkit.bot_process import BotProcess
from testkit.doubles.gateway import GatewayDouble, last_user_text_contains
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import TelegramDouble
from testkit.media import make_audio_file, make_png, make_png_bomb, make_tiff_bomb, make_voice_note
from testkit.postgres import PostgresServer
from tests.e2e.harness import API_KEY, BOT_TOKEN, StartBot, new_person
from tests.e2e.steps import Conversation, choose_setting

shared = pytest.mark.usefixtures("bot")
_albums = itertools.count(1)
_tones = itertools.count(2100)

# What a bomb would cost if it were decoded: 13000 x 13000 RGB pixels are 507 MB. The bot's peak memory may grow
# by far less than that while it refuses one.
_BOMB_ALLOWANCE_MB = 100


@functools.cache
def png_bomb() -> bytes:
    return make_png_bomb()


@functools.cache
def tiff_bomb() -> bytes:
    return make_tiff_bomb()


def peak_rss_mb(process: BotProcess) -> float:
    """The most memory the process has held so far (VmHWM), in MB."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _send_photo_bomb(me: Conversation) -> None:
    me.send_photo(png_bomb())


def _send_png_file_bomb(me: Conversation) -> None:
    me.send_document(png_bomb(), "sunset.png", "image/png")


def _send_tiff_file_bomb(me: Conversation) -> None:
    me.send_document(tiff_bomb(), "scan.tiff", "image/tiff")


def _send_imagine_reference_bomb(me: Conversation) -> None:
    me.send_document(png_bomb(), "reference.png", "image/png", caption="/imagine a fox like this")


BOMBS = {
    "photo": _send_photo_bomb,
    "png-file": _send_png_file_bomb,
    "tiff-file": _send_tiff_file_bomb,
    "imagine-reference": _send_imagine_reference_bomb,
}


@shared
@pytest.mark.parametrize("send", list(BOMBS), ids=list(BOMBS))
async def test_a_picture_bomb_is_refused_by_its_header_and_costs_nothing(
    bot: BotProcess, telegram: TelegramDouble, gateway: GatewayDouble, midjourney: MidjourneyDouble, person, send
) -> None:
    me = Conversation(telegram, *person())
    other = Conversation(telegram, *person("Bo"))
    peak_before = peak_rss_mb(bot)
    gateway_calls, submissions = len(gateway.calls), len(midjourney.submissions)

    BOMBS[send](me)
    other.send_text("are you still there?")
    assert await other.reply_text() == "echo: are you still there?"  # the bot stays responsive meanwhile
    refusal = await me.reply_text()
    assert "too large" in refusal and "40 megapixels" in refusal

    await telegram.wait_idle(0.3)
    assert peak_rss_mb(bot) - peak_before < _BOMB_ALLOWANCE_MB
    assert len(midjourney.submissions) == submissions
    # Nothing of the bomb went upstream: the only gateway call since is the other person's chat turn.
    assert [call.path for call in gateway.calls[gateway_calls:]] == ["/chat/completions"]
    quota = await me.quota()
    assert quota["vision"][0] == 0 and quota["imagine"][0] == 0


def send_file_in_album(me: Conversation, data: bytes, file_name: str, mime_type: str, album: str) -> None:
    """A picture sent as a file inside an album (a modified client can do it; Telegram reports no pixel size for
    files, so only the bytes' own header can tell)."""
    file_id, unique_id, _path = me.telegram.add_file(data, suffix=Path(file_name).suffix)
    document = {"file_id": file_id, "file_unique_id": unique_id, "file_name": file_name, "mime_type": mime_type,
                "file_size": len(data)}  # fmt: skip
    message_id = max((key[1] for key in me.telegram.messages if key[0] == me.chat_id), default=0) + 1
    me.telegram.push_update(
        {
            "message": {
                "message_id": message_id,
                "date": 1,
                "chat": me.chat,
                "from": me.user,
                "document": document,
                "media_group_id": album,
            },
        }  # fmt: skip
    )


@shared
@pytest.mark.parametrize("bomb", ["declared", "header"])
async def test_a_bomb_in_a_blend_album_is_refused_before_midjourney(
    bot: BotProcess, telegram: TelegramDouble, midjourney: MidjourneyDouble, person, bomb: str
) -> None:
    me = Conversation(telegram, *person())
    peak_before = peak_rss_mb(bot)
    submissions = len(midjourney.submissions)
    album = f"bomb-{next(_albums)}"
    me.send_photo(make_png(), caption="/blend", media_group_id=album)
    if bomb == "declared":  # a photo: Telegram states its size, the bot refuses before downloading it
        telegram.send_photo(me.user, me.chat, png_bomb(), media_group_id=album)
    else:
        send_file_in_album(me, tiff_bomb(), "b.tiff", "image/tiff", album)
    refusal = await me.reply_text()
    assert "too large" in refusal
    await telegram.wait_idle(0.3)
    assert peak_rss_mb(bot) - peak_before < _BOMB_ALLOWANCE_MB
    assert len(midjourney.submissions) == submissions
    assert (await me.quota())["imagine"][0] == 0


# --- requests that hang, and what /cancel does to them ----------------------------------------------------


@shared
async def test_cancel_stops_a_hanging_text_answer_which_never_appears_and_costs_nothing(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    question = f"tell me something slowly {next(_tones)}"
    # The answer starts, then crawls: eight pieces over more than three seconds.
    gateway.when("/chat/completions", last_user_text_contains(question)).reply_text(
        "the whole late answer nobody should see"
    ).paced(8, 0.45)
    me.send_text(question)
    await me.reply("sendMessageDraft")  # the answer is being shown as it is written
    me.send_text("/cancel")
    assert await me.reply_text() == "Stopped your answer. Nothing was charged."
    await telegram.wait_idle(4.0)  # longer than the rest of the answer would take
    sent = [call.params.get("text", "") for call in me.calls_since("sendMessage")]
    assert not any("late answer" in text for text in sent)
    assert (await me.quota())["chat"][0] == 0
    me.send_text("/cancel")
    assert "nothing to cancel" in await me.reply_text()


@shared
async def test_a_text_answered_in_voice_is_a_voice_use(telegram: TelegramDouble, person) -> None:
    me = Conversation(telegram, *person())
    await choose_setting(me, "💬", "text and voice")
    me.send_text("read this to me")
    await me.reply("sendVoice")
    assert await me.reply_text() == "spoken: read this to me"  # the words follow the voice
    quota = await me.quota()
    assert (quota["voice"][0], quota["chat"][0]) == (1, 0)


async def test_a_spoken_answer_to_text_needs_voice_quota(start_bot: StartBot, gateway: GatewayDouble) -> None:
    process = await start_bot(QUOTA_VOICE="0")
    me = Conversation(process.telegram, *new_person(process.telegram))
    await choose_setting(me, "💬", "text and voice")
    before = len(gateway.calls)
    me.send_text("read this to me too")
    assert await me.reply_text() == "voice is not available to you: your daily limit is 0."
    await process.telegram.wait_idle(0.3)
    assert len(gateway.calls) == before


@shared
async def test_seed_is_one_request_at_a_time(
    telegram: TelegramDouble, gateway: GatewayDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    me.send_text("/imagine a seed-holding pine")
    grid = await telegram.wait_for(
        lambda call: call.method == "sendPhoto" and call.chat_id == me.chat_id and "reply_markup" in call.params,
        timeout=20,
    )
    [task_id] = [task.id for task in midjourney.tasks.values() if task.prompt == "a seed-holding pine"]
    gateway.when(f"/mj/task/{task_id}/image-seed").delay(1.5)
    me.send_text("/seed", reply_to=grid.result)
    await gateway.wait_for(lambda call: call.path.endswith("/image-seed"))
    me.send_text("/seed", reply_to=grid.result)
    assert "still working on your last request" in await me.reply_text()
    answer = await me.reply("sendMessage", timeout=10, nth=1)  # the first /seed's answer, after the refusal
    assert midjourney.seed_of(task_id) in answer.result["text"]
    assert len([c for c in gateway.calls_to(f"/mj/task/{task_id}/image-seed")]) == 1


# --- recordings that lie about their length -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["voice", "mp3"])
async def test_a_recording_is_measured_not_believed(
    start_bot: StartBot, gateway: GatewayDouble, kind: str
) -> None:
    process = await start_bot(MAX_VOICE_SECONDS="10")
    me = Conversation(process.telegram, *new_person(process.telegram))
    before = len(gateway.calls_to("/audio/transcriptions"))
    if kind == "voice":
        me.send_voice(make_voice_note(20.0, freq=next(_tones)), duration=1)  # 20 s, declared as 1 s
    else:
        me.send_audio(make_audio_file(20.0, "mp3"), 1)
    refusal = await me.reply_text()
    assert "longer than I can listen to at once (at most 10 seconds)" in refusal
    await process.telegram.wait_idle(0.3)
    assert len(gateway.calls_to("/audio/transcriptions")) == before
    assert (await me.quota())["voice"][0] == 0
    # An honest recording within the limit is still heard.
    me.send_voice(make_voice_note(2.0, freq=next(_tones)), duration=2)
    await me.reply("sendVoice")


# --- the webhook, as anyone who can reach its port may use it ---------------------------------------------

_SECRET = "s3cret-token_42"


async def _raw_post(port: int, path: str, headers: bytes, body: bytes) -> int:
    """POST with header bytes exactly as given (an HTTP client library would refuse to send some of them);
    returns the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + headers + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def _webhook_bot(start_bot: StartBot) -> tuple[BotProcess, int]:
    port = _free_port()
    process = await start_bot(
        WEBHOOK_URL="https://bot.example.com/tg/hook",
        WEBHOOK_SECRET=_SECRET,
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
    )
    return process, port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_any_bad_webhook_secret_is_refused_with_401_never_500(start_bot: StartBot) -> None:
    process, port = await _webhook_bot(start_bot)
    user, chat = new_person(process.telegram)
    update = (
        b'{"update_id": 7, "message": {"message_id": 1, "date": 1, "chat": {"id": %d, "type": "private"}}}'
        % (chat["id"])
    )
    secrets = [
        "sécret".encode(),  # UTF-8, not ASCII
        b"\xff\xfe\x80 not even utf-8",
        _SECRET.encode() + b"\xc3\xa9",
        b"",
    ]
    for secret in secrets:
        status = await _raw_post(port, "/tg/hook", b"X-Telegram-Bot-Api-Secret-Token: " + secret + b"\r\n", update)
        assert status == 401, secret
    assert await _raw_post(port, "/tg/hook", b"", update) == 401  # no header at all
    # The right secret with a body that is no update: refused as a bad request, and still no traceback.
    good = b"X-Telegram-Bot-Api-Secret-Token: " + _SECRET.encode() + b"\r\n"
    assert await _raw_post(port, "/tg/hook", good, b"{not json") == 400
    assert await _raw_post(port, "/tg/hook", good, b"[1, 2]") == 400
    assert await process.stop() == 0
    log = process.log_text()
    assert "Traceback" not in log and "Error handling request" not in log


async def test_a_slow_turn_never_holds_the_webhook_request(start_bot: StartBot, gateway: GatewayDouble) -> None:
    process, port = await _webhook_bot(start_bot)
    user, chat = new_person(process.telegram)
    question = f"a slow question through the hook {next(_tones)}"
    gateway.when("/chat/completions", last_user_text_contains(question)).delay(2.0)
    body = b'{"update_id": 8, "message": {"message_id": 5, "date": 1, "chat": %s, "from": %s, "text": "%s"}}' % (
        json_bytes(chat),
        json_bytes(user),
        question.encode(),
    )
    good = b"X-Telegram-Bot-Api-Secret-Token: " + _SECRET.encode() + b"\r\n"
    assert await _raw_post(port, "/tg/hook", good, body) == 200
    # Telegram has its answer; the turn is still waiting for the gateway.
    call = await gateway.wait_for(last_user_text_contains(question))
    assert call.status is None
    answer = await process.telegram.wait_for_method("sendMessage", chat_id=chat["id"], timeout=10)
    assert question in answer.params["text"]


def json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


async def test_a_webhook_secret_telegram_would_refuse_stops_the_start_in_one_line(
    tmp_path: Path, telegram: TelegramDouble, gateway: GatewayDouble
) -> None:
    process = BotProcess(
        tmp_path, telegram, gateway, BOT_TOKEN, API_KEY,
        {"WEBHOOK_URL": "https://bot.example.com/hook", "WEBHOOK_SECRET": "not allowed!"},
    )  # fmt: skip
    await process.launch()
    assert await process.wait_exit(30) == 2
    log = process.log_text().strip()
    assert len(log.splitlines()) == 1 and "WEBHOOK_SECRET" in log and "Traceback" not in log


# --- start-up trouble, in one line each ------------------------------------------------------------------


@pytest.mark.parametrize("trouble", ["unreachable", "wrong password"])
async def test_a_database_url_that_does_not_work_stops_the_start_in_one_line_without_the_password(
    tmp_path: Path, telegram: TelegramDouble, gateway: GatewayDouble, postgres: PostgresServer, trouble: str
) -> None:
    if trouble == "unreachable":
        url = f"postgresql://bot:hunter2-secret@127.0.0.1:{_free_port()}/bot"
    else:  # a real server that knows no such user
        url = (
            postgres.url()
            .replace("postgres:@", "nobody:hunter2-secret@", 1)
            .replace("postgres@", "nobody:hunter2-secret@", 1)
        )
    process = BotProcess(tmp_path, telegram, gateway, BOT_TOKEN, API_KEY, {"DATABASE_URL": url})
    await process.launch()
    assert await process.wait_exit(30) == 2
    log = process.log_text().strip()
    assert len(log.splitlines()) == 1 and "DATABASE_URL" in log, log
    assert "hunter2" not in log and "Traceback" not in log


async def test_telegram_unreachable_is_waited_out_in_one_line_per_try(
    tmp_path: Path, telegram: TelegramDouble, gateway: GatewayDouble
) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    process = BotProcess(tmp_path, telegram, gateway, BOT_TOKEN, API_KEY, {"TELEGRAM_API_URL": closed})
    await process.launch()
    log = await process.wait_for_log("trying again in 2 s", timeout=20)  # the second try, after backoff
    assert process.exit_code is None  # still waiting for the network, as a service manager would want
    assert await process.stop() == 0  # SIGTERM while waiting stops it at once, cleanly
    lines = [line for line in log.splitlines() if "cannot reach the Telegram Bot API" in line]
    assert len(lines) >= 2 and all(
        f"{closed.removeprefix('http://')} (TELEGRAM_API_URL)" in line for line in lines
    )
    assert "Traceback" not in process.log_text()


async def test_a_rejected_token_exits_non_zero_in_one_line(
    tmp_path: Path, telegram: TelegramDouble, gateway: GatewayDouble
) -> None:
    process = BotProcess(tmp_path, telegram, gateway, "7000000001:not-the-right-token", API_KEY)
    await process.launch()
    assert await process.wait_exit(30) == 2
    log = process.log_text()
    assert "configuration error: BOT_TOKEN was rejected by the Telegram Bot API" in log
    assert "Traceback" not in log


async def test_an_unreachable_gateway_is_said_in_one_line_and_the_bot_still_answers(start_bot: StartBot) -> None:
    closed = f"127.0.0.1:{_free_port()}"
    process = await start_bot(API_BASE_URL=f"http://{closed}/v1", MJ_BASE_URL=f"http://{closed}", CHAT_TIMEOUT="3")
    log = await process.wait_for_log("cannot reach the gateway")
    [line] = [line for line in log.splitlines() if "cannot reach the gateway" in line]
    assert f"{closed} (API_BASE_URL)" in line
    me = Conversation(process.telegram, *new_person(process.telegram))
    me.send_text("hello?")
    assert (await me.reply_text()).startswith("Sorry, the AI service")  # the user hears back in words


# --- what is kept, and for how long ------------------------------------------------------------------------


async def test_old_conversations_and_finished_tasks_are_pruned(start_bot: StartBot, tmp_path: Path) -> None:
    process = await start_bot(HISTORY_DAYS="30", DATABASE_URL="")  # SQLite: the test writes into the file
    assert await process.stop() == 0
    with sqlite3.connect(process.database_path) as database:
        database.executemany(
            "INSERT INTO history (chat_id, thread_id, role, content, created_at) VALUES (?, 0, 'user', ?, ?)",
            [(1, "from last winter", "2025-01-01T00:00:00.000Z"), (1, "from just now", iso_now())],
        )
        database.executemany(
            """INSERT INTO mj_tasks (task_id, chat_id, requested_by, charged_user, charge_day, kind, state,
                                     created_at, finished_at) VALUES (?, 1, 1, 1, '2025-01-01', 'imagine', ?, ?, ?)""",
            [("old-done", "done", 1.0, 2.0), ("new-done", "done", time.time(), time.time()),
             ("old-pending", "pending", time.time() - 60, None)],
        )  # fmt: skip
        database.execute(
            "INSERT INTO mj_buttons (key, task_id, custom_id, label) VALUES ('k', 'old-done', 'c', 'U1')"
        )
    await process.start()
    await process.wait_for_log("pruned old records")
    with sqlite3.connect(process.database_path) as database:
        kept = [row[0] for row in database.execute("SELECT content FROM history WHERE chat_id = 1")]
        tasks = {row[0] for row in database.execute("SELECT task_id FROM mj_tasks")}
        buttons = database.execute("SELECT COUNT(*) FROM mj_buttons WHERE task_id = 'old-done'").fetchone()[0]
    assert kept == ["from just now"]
    assert {"new-done", "old-pending"} <= tasks and "old-done" not in tasks
    assert buttons == 0


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
