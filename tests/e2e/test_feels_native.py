"""Streaming answers, Chinese and English, personal settings, webhook mode, and the one log line per turn."""

from __future__ import annotations

import itertools
import json
import socket
import time

import aiohttp
import pytest

from testkit.doubles.gateway import GatewayDouble, last_user_text_contains
from testkit.doubles.telegram_api import TelegramDouble
from testkit.media import make_voice_note
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation, choose_setting

_groups = itertools.count(-1004000000001, -1)
_tones = itertools.count(1200)
shared = pytest.mark.usefixtures("bot")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _story(words: int, marker: str) -> str:
    return " ".join(f"{marker}{n}" for n in range(words))


# --- streaming -----------------------------------------------------------------------------------------


@shared
async def test_private_answers_stream_as_drafts_then_arrive_as_a_message(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    answer = _story(60, "w")
    gateway.when("/chat/completions", last_user_text_contains("tell me slowly")).reply_text(answer).paced(6, 0.5)
    me.send_text("tell me slowly")

    final = await me.reply("sendMessage", timeout=20)
    assert final.result["text"] == answer
    drafts = [c for c in me.calls_since("sendMessageDraft") if c.at < final.at]
    assert len(drafts) >= 2
    texts = [c.params["text"] for c in drafts]
    assert all(text.endswith(" …") and answer.startswith(text[:-2]) for text in texts)
    assert len(set(texts)) == len(texts) and len(texts[-1]) > len(texts[0])  # it grew, piece by piece
    assert {c.params["draft_id"] for c in drafts} == {drafts[0].params["draft_id"]}
    request = await gateway.wait_for(last_user_text_contains("tell me slowly"))
    assert request.json["stream"] is True


@shared
async def test_group_answers_stream_as_one_message_edited_at_telegrams_pace(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    group = telegram.group_chat(next(_groups))
    user, _ = person("Ivy")
    us = Conversation(telegram, user, group)
    answer = _story(80, "g")
    gateway.when("/chat/completions", last_user_text_contains("slow group story")).reply_text(answer).paced(8, 0.5)
    us.send_text("@WenwenTestBot slow group story")

    first = await us.reply("sendMessage", timeout=20)
    assert first.at - us.since >= 0.9  # nothing shown in the first second
    message_id = first.result["message_id"]
    await telegram.wait_for(
        lambda c: c.method == "editMessageText" and c.params.get("message_id") == message_id
        and c.params.get("text") == answer,
        timeout=20,
    )  # fmt: skip
    edits = [c for c in telegram.calls_to("editMessageText", group["id"]) if c.params["message_id"] == message_id]
    assert len(edits) >= 2
    gaps = [later.at - earlier.at for earlier, later in zip([first, *edits], edits, strict=False)][:-1]
    assert all(gap >= 0.9 for gap in gaps), gaps  # the final edit comes as soon as the answer is complete
    assert telegram.messages[(group["id"], message_id)]["text"] == answer
    assert not [c for c in us.calls_since("sendMessage") if c.params.get("message_id") != message_id][1:]


@shared
async def test_a_long_streamed_group_answer_continues_in_a_new_message(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    group = telegram.group_chat(next(_groups))
    user, _ = person("Jon")
    us = Conversation(telegram, user, group)
    paragraphs = [f"Part {n}. " + "words and more words " * 40 for n in range(8)]
    answer = "\n\n".join(p.strip() for p in paragraphs)
    assert len(answer) > 4096
    gateway.when("/chat/completions", last_user_text_contains("a very long story")).reply_text(answer).paced(
        6, 0.4
    )
    us.send_text("@WenwenTestBot a very long story")

    await us.reply("sendMessage", nth=1, timeout=20)
    await telegram.wait_idle(1.5)
    sent = [c.result["message_id"] for c in us.calls_since("sendMessage")]
    texts = [telegram.messages[(group["id"], message_id)]["text"] for message_id in sent]
    assert len(texts) == 2 and all(len(text) <= 4096 for text in texts)
    assert "\n\n".join(texts) == answer


# --- languages -----------------------------------------------------------------------------------------


@shared
async def test_a_chinese_user_is_answered_in_chinese(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person("Li", language_code="zh-hans"))
    me.send_text("/start")
    guide = await me.reply_text()
    assert "你好" in guide and "/imagine" in guide
    me.send_text("/draw")
    assert "告诉我要画什么" in await me.reply_text()
    me.send_text("今天天气怎么样？")
    await me.reply_text()
    request = await gateway.wait_for(last_user_text_contains("今天天气怎么样"))
    assert "Simplified Chinese" in request.json["messages"][0]["content"]


@shared
async def test_quota_refusals_name_the_kind_in_every_language(
    telegram: TelegramDouble, person, admin: Conversation
) -> None:
    me = Conversation(telegram, *person("Wang", language_code="zh-hans"))
    admin.send_text(f"/setquota {me.user['id']} draw 0")
    await admin.reply_text()
    me.send_text("/draw 一只猫")
    refusal = await me.reply_text()
    assert "draw" in refusal and "0" in refusal and "上限" in refusal


@shared
async def test_lang_switches_the_language(telegram: TelegramDouble, gateway: GatewayDouble, person) -> None:
    me = Conversation(telegram, *person("Max", language_code="en"))
    me.send_text("/lang zh")
    assert "中文" in await me.reply_text()
    me.send_text("/help")
    assert "你好" in await me.reply_text()
    me.send_text("/lang")
    picker = await me.reply("sendMessage")
    assert {button["text"] for row in picker.params["reply_markup"]["inline_keyboard"] for button in row} >= {
        "English", "✓ 中文",
    }  # fmt: skip
    me.send_text("/lang en")
    assert "English" in await me.reply_text()
    me.send_text("/help")
    assert "Hi!" in await me.reply_text()


# --- personal settings -------------------------------------------------------------------------------


@shared
async def test_settings_change_the_voice_and_how_voice_notes_are_answered(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person("Zoe"))
    await choose_setting(me, "🗣", "coral")
    note = make_voice_note(1.0, freq=next(_tones))
    gateway.set_transcript(note, "speak to me in coral")
    me.send_voice(note, duration=1)
    await me.reply("sendVoice")
    request = await gateway.wait_for(last_user_text_contains("speak to me in coral"))
    assert request.json["audio"] == {"voice": "coral", "format": "pcm16"}

    await choose_setting(me, "🎙", "text")
    note = make_voice_note(1.0, freq=next(_tones))
    gateway.set_transcript(note, "answer me in writing")
    me.send_voice(note, duration=1)
    assert await me.reply_text() == "echo: answer me in writing"
    request = await gateway.wait_for(last_user_text_contains("answer me in writing"))
    assert "modalities" not in request.json and request.json["model"] == "gpt-4o-mini"
    assert not me.calls_since("sendVoice")


@shared
async def test_settings_can_make_text_answers_spoken_too(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person("Kai"))
    await choose_setting(me, "💬", "text and voice")
    me.send_text("say it out loud")
    voice = await me.reply("sendVoice")
    assert voice.files["voice"].data[:4] == b"OggS"
    assert await me.reply_text() == "spoken: say it out loud"
    request = await gateway.wait_for(last_user_text_contains("say it out loud"))
    assert request.json["model"] == "gpt-4o-audio-preview" and request.json["modalities"] == ["text", "audio"]


@shared
async def test_pressing_the_same_choice_twice_is_no_error(telegram: TelegramDouble, person) -> None:
    me = Conversation(telegram, *person())
    me.send_text("/settings")
    menu = await me.reply("sendMessage")
    me.since = time.monotonic()
    data = "set:voice:ash"
    for _ in range(2):
        await telegram.wait_idle(0.2)
        shown = telegram.messages[(me.chat_id, menu.result["message_id"])]
        query = {"id": f"78{next(_tones)}", "from": me.user, "message": shown, "chat_instance": "1", "data": data}
        telegram.push_update({"callback_query": query})
        answer = await telegram.wait_for_method("answerCallbackQuery", callback_query_id=query["id"])
        assert answer.params.get("text") == "Saved."
    await telegram.wait_idle(0.3)
    assert not me.calls_since("sendMessage")  # no apology after the second, unchanged, edit


@shared
async def test_forged_settings_buttons_change_nothing(telegram: TelegramDouble, person) -> None:
    me = Conversation(telegram, *person())
    me.send_text("/settings")
    menu = await me.reply("sendMessage")
    for data in ("set:voice:galaxy", "set:nonsense:x", "set:voice_reply:shout"):
        query = {
            "id": f"77{next(_tones)}",
            "from": me.user,
            "message": menu.result,
            "chat_instance": "1",
            "data": data,
        }
        telegram.push_update({"callback_query": query})
        answer = await telegram.wait_for_method("answerCallbackQuery", callback_query_id=query["id"])
        assert answer.params.get("show_alert") is True
    me.send_text("/settings")
    assert "alloy" in await me.reply_text()


# --- webhook mode -------------------------------------------------------------------------------------


async def test_webhook_mode_takes_updates_with_the_secret_and_refuses_others(start_bot: StartBot) -> None:
    port = _free_port()
    process = await start_bot(
        WEBHOOK_URL="https://bot.example.com/tg/hook",
        WEBHOOK_SECRET="s3cret-token_42",
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
    )
    telegram = process.telegram
    [registered] = [c for c in telegram.calls_to("setWebhook") if not c.failed]
    assert registered.params["url"] == "https://bot.example.com/tg/hook"
    assert registered.params["secret_token"] == "s3cret-token_42"

    user, chat = new_person(telegram)
    update = {
        "update_id": 501,
        "message": {"message_id": 1, "date": 1, "chat": chat, "from": user, "text": "hi hook"},
    }
    hook = f"http://127.0.0.1:{port}/tg/hook"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(hook, json=update, headers=headers) as refused:
                assert refused.status in (401, 403)
        async with http.post(
            hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token_42"}
        ) as ok:
            assert ok.status == 200
        answer = await telegram.wait_for_method("sendMessage", chat_id=chat["id"])
        assert answer.params["text"] == "echo: hi hook"
        assert len(telegram.calls_to("sendMessage", chat["id"])) == 1  # the refused posts did nothing
        async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status == 200 and (await health.json())["status"] == "ok"
    assert telegram.get_updates_calls == 0
    assert await process.stop() == 0


# --- logs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["text", "json"])
async def test_each_turn_leaves_one_structured_line_without_its_contents(start_bot: StartBot, style: str) -> None:
    process = await start_bot(LOG_FORMAT=style)
    me = Conversation(process.telegram, *new_person(process.telegram))
    me.send_text("my secret diary entry")
    await me.reply_text()
    me.send_text("/draw")  # a refusal: no turn
    await me.reply_text()
    assert await process.stop() == 0
    log = process.log_text()
    assert "my secret diary entry" not in log
    turns = [line for line in log.splitlines() if "turn" in line and "kind" in line]
    assert len(turns) == 1, log
    if style == "json":
        entry = json.loads(turns[0])
        assert (entry["user"], entry["kind"], entry["outcome"]) == (me.user["id"], "chat", "ok")
        assert entry["tokens"] > 0 and entry["duration_ms"] >= 0
    else:
        assert f"user={me.user['id']} kind=chat outcome=ok" in turns[0] and "tokens=" in turns[0]
    assert "Update id=" not in log  # aiogram's own line per update would make two


async def test_menus_are_registered_in_chinese_too(start_bot: StartBot) -> None:
    process = await start_bot(ADMIN_IDS="90001")
    chinese = process.telegram.my_commands({"type": "default"}, language_code="zh")
    assert {c["command"] for c in chinese} >= {"imagine", "lang", "settings"}
    assert any("图" in c["description"] for c in chinese)
