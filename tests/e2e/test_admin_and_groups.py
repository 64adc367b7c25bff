"""Admins run the bot from Telegram (quotas, bans, stats, menus); groups get answers only when they ask."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from testkit.doubles.gateway import GatewayDouble, last_user_text_contains
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import TelegramDouble
from testkit.media import make_voice_note
from tests.e2e.harness import ADMIN_ID, StartBot, new_person
from tests.e2e.steps import Conversation

_groups = itertools.count(-1003000000001, -1)
_tones = itertools.count(700)

shared = pytest.mark.usefixtures("bot")


def _chat_calls(gateway: GatewayDouble, marker: str) -> list:
    return [call for call in gateway.calls_to("/chat/completions") if marker in str(call.json["messages"][-1])]


# --- quotas ---------------------------------------------------------------------------------------


@shared
async def test_setquota_changes_the_limit_at_once(
    telegram: TelegramDouble, gateway: GatewayDouble, person, admin: Conversation
) -> None:
    me = Conversation(telegram, *person())
    admin.send_text(f"/setquota {me.user['id']} chat 2")
    confirmation = await admin.reply_text()
    assert "chat" in confirmation and "2" in confirmation and str(me.user["id"]) in confirmation
    assert (await me.quota())["chat"] == (0, "2")

    for n in range(2):
        me.send_text(f"limited question {n}")
        assert (await me.reply_text()).startswith("echo:")
    me.send_text("limited question 2")
    refusal = await me.reply_text()
    assert "chat" in refusal and "2" in refusal
    assert len(_chat_calls(gateway, "limited question")) == 2


@shared
async def test_a_limit_of_zero_refuses_and_minus_one_is_unlimited(
    telegram: TelegramDouble, gateway: GatewayDouble, person, admin: Conversation
) -> None:
    me = Conversation(telegram, *person())
    admin.send_text(f"/setquota {me.user['id']} draw 0")
    await admin.reply_text()
    before = len(gateway.calls_to("/images/generations"))
    me.send_text("/draw a forbidden picture")
    refusal = await me.reply_text()
    assert "draw" in refusal and "0" in refusal
    assert len(gateway.calls_to("/images/generations")) == before

    admin.send_text(f"/setquota {me.user['id']} all -1")
    assert "unlimited" in await admin.reply_text()
    assert {limit for _, limit in (await me.quota()).values()} == {"unlimited"}
    me.send_text("/draw now it is allowed")
    await me.reply("sendPhoto")


@shared
async def test_admins_can_target_a_user_by_replying_to_them(
    telegram: TelegramDouble, person, admin: Conversation
) -> None:
    group = telegram.group_chat(next(_groups))
    member, _ = person("Cy")
    chatter = telegram.send_text(member, group, "just chatting with friends")  # not for the bot
    boss = Conversation(telegram, admin.user, group)
    boss.send_text("/setquota imagine 30", reply_to=chatter)
    assert "30" in await boss.reply_text()
    private = Conversation(telegram, member, telegram.private_chat(member["id"], first_name="Cy")[1])
    assert (await private.quota())["imagine"] == (0, "30")


@shared
async def test_admin_sees_another_users_quota(telegram: TelegramDouble, person, admin: Conversation) -> None:
    me = Conversation(telegram, *person("Dora"))
    me.send_text("hello there, counting")
    await me.reply_text()
    admin.send_text(f"/quota {me.user['id']}")
    table = await admin.reply_text()
    assert "Dora" in table and "chat" in table
    admin.send_text("/quota 999999999")
    assert "not seen yet" in await admin.reply_text()


@shared
@pytest.mark.parametrize(
    "arguments",
    [
        "",
        "12345 chat",
        "12345 colour 5",
        "12345 chat many",
        "12345 chat -2",
        "12345 chat 99999999999",
        "99999999999999999999 chat 5",
        "1; DROP TABLE users; chat 5",
        "١٢٣ chat 5",  # Arabic-Indic digits
        "12345 chat ５",  # a full-width digit
        "<b>1</b> chat 5",
    ],
)
async def test_bad_setquota_arguments_get_the_usage_line_and_change_nothing(
    telegram: TelegramDouble, admin: Conversation, arguments: str
) -> None:
    admin.send_text(f"/setquota {arguments}".strip())
    answer = await admin.reply_text()
    assert answer.startswith("Usage: /setquota")
    admin.send_text("/quota 12345")
    assert "unlimited" not in await admin.reply_text()


# --- non-admins -------------------------------------------------------------------------------------


@shared
@pytest.mark.parametrize(
    "command", ["/setquota {me} all -1", "/ban {other}", "/unban {me}", "/stats", "/quota {other}", "/quota 1"]
)
async def test_non_admins_are_refused_and_nothing_changes(
    telegram: TelegramDouble, gateway: GatewayDouble, person, command: str
) -> None:
    me = Conversation(telegram, *person())
    other = Conversation(telegram, *person())
    me.send_text(command.format(me=me.user["id"], other=other.user["id"]))
    assert await me.reply_text() == "This command is for admins only."
    assert (await me.quota())["chat"] == (0, "50")
    other.send_text("am I still served?")
    assert (await other.reply_text()).startswith("echo:")


# --- bans -------------------------------------------------------------------------------------------


@shared
async def test_a_banned_user_is_told_once_and_gets_no_service_anywhere(
    telegram: TelegramDouble, gateway: GatewayDouble, midjourney: MidjourneyDouble, person, admin: Conversation
) -> None:
    me = Conversation(telegram, *person())
    admin.send_text(f"/ban {me.user['id']}")
    assert "banned" in await admin.reply_text()
    calls_before, submissions_before = len(gateway.calls), len(midjourney.submissions)

    me.send_text("please answer me")
    assert await me.reply_text() == "You can't use this bot."
    me.send_text("/imagine a banned picture")
    me.send_voice(make_voice_note(1.0, freq=next(_tones)), duration=1)
    group = telegram.group_chat(next(_groups))
    telegram.send_text(me.user, group, "@WenwenTestBot hello from the group")
    await telegram.wait_idle(1.0)
    assert len(me.calls_since()) == 0  # one notice, then silence
    assert not telegram.sent_to(group["id"])
    assert [c.path for c in gateway.calls[calls_before:]] == [] and len(
        midjourney.submissions
    ) == submissions_before

    admin.send_text(f"/unban {me.user['id']}")
    assert "again" in await admin.reply_text()
    me.send_text("and now?")
    assert await me.reply_text() == "echo: and now?"


@shared
async def test_the_ban_notice_speaks_the_users_language(
    telegram: TelegramDouble, person, admin: Conversation
) -> None:
    me = Conversation(telegram, *person("Mei", language_code="zh-hans"))
    admin.send_text(f"/ban {me.user['id']}")
    await admin.reply_text()
    me.send_text("你好")
    assert await me.reply_text() == "你不能使用这个机器人。"


@shared
async def test_admins_cannot_be_banned(telegram: TelegramDouble, admin: Conversation) -> None:
    admin.send_text(f"/ban {ADMIN_ID}")
    assert "cannot be banned" in await admin.reply_text()


# --- groups -----------------------------------------------------------------------------------------


@shared
async def test_in_a_group_only_messages_for_the_bot_are_answered(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    group = telegram.group_chat(next(_groups), title="Friends")
    ann_user, _ = person("Ann")
    ann = Conversation(telegram, ann_user, group)

    ann.send_text("just talking among ourselves")
    ann.send_voice(make_voice_note(1.0, freq=next(_tones)), duration=1)
    ann.send_text("/imagine@SomeOtherBot not for us")
    await telegram.wait_idle(1.0)
    assert not ann.calls_since()
    assert not _chat_calls(gateway, "among ourselves")

    question = ann.send_text("@WenwenTestBot what is the capital of France?")
    answer = await ann.reply("sendMessage")
    assert answer.result["text"] == "echo: Ann: what is the capital of France?"
    assert answer.params["reply_parameters"]["message_id"] == question["message"]["message_id"]

    ann.send_text("and of Italy?", reply_to=answer.result)
    assert await ann.reply_text() == "echo: Ann: and of Italy?"
    messages = _chat_calls(gateway, "and of Italy?")[0].json["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "Ann: what is the capital of France?",
        "echo: Ann: what is the capital of France?",
        "Ann: and of Italy?",
    ]

    note = make_voice_note(1.0, freq=next(_tones))
    gateway.set_transcript(note, "tell the group a joke")
    ann.send_voice(note, duration=1, reply_to=answer.result)
    voice = await ann.reply("sendVoice")
    assert voice.result["caption"] == "spoken: Ann: tell the group a joke"


@shared
async def test_imagine_addressed_to_the_bot_works_in_a_group(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    group = telegram.group_chat(next(_groups))
    user, _ = person("Eve")
    us = Conversation(telegram, user, group)
    us.send_text("/imagine@WenwenTestBot a group portrait")
    await us.reply("sendMessage")
    assert ("imagine", {"prompt": "a group portrait"}) in midjourney.submissions


@shared
async def test_two_users_in_a_group_are_charged_separately(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    group = telegram.group_chat(next(_groups))
    people = [person(name) for name in ("Fay", "Gus")]
    for user, _ in people:
        member = Conversation(telegram, user, group)
        member.send_text(f"@WenwenTestBot hi, I am {user['first_name']}")
        await member.reply_text()
    for user, chat in people:
        assert (await Conversation(telegram, user, chat).quota())["chat"] == (1, "50")


@shared
async def test_forum_topics_are_answered_in_their_topic_with_their_own_context(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    forum = telegram.group_chat(next(_groups), title="Forum", is_forum=True)
    user, _ = person("Hal")
    us = Conversation(telegram, user, forum)
    us.send_text("@WenwenTestBot topic one fact: apples", message_thread_id=11)
    first = await us.reply("sendMessage")
    assert first.params["message_thread_id"] == 11
    us.send_text("@WenwenTestBot topic two question", message_thread_id=22)
    second = await us.reply("sendMessage")
    assert second.params["message_thread_id"] == 22
    messages = _chat_calls(gateway, "topic two question")[0].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]  # topic one's talk stays in topic one


async def test_100_parallel_requests_with_quota_10_let_exactly_10_through(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    process = await start_bot(QUOTA_CHAT="10")
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    for n in range(100):
        me.send_text(f"parallel burst {n}")
    await telegram.wait_for(lambda c: len(me.calls_since("sendMessage")) >= 100, timeout=30)
    await telegram.wait_idle(0.5)
    answers = [call.result["text"] for call in me.calls_since("sendMessage")]
    assert sum(text.startswith("echo: parallel burst") for text in answers) == 10
    assert sum("Daily limit reached for chat: 10" in text for text in answers) == 90
    assert len(_chat_calls(gateway, "parallel burst")) == 10


# --- stats and menus ----------------------------------------------------------------------------------


async def test_stats_match_the_uses_made(start_bot: StartBot, gateway: GatewayDouble) -> None:
    process = await start_bot(ADMIN_IDS=str(ADMIN_ID))
    telegram = process.telegram
    ann = Conversation(telegram, *new_person(telegram, "Ann"))
    bob = Conversation(telegram, *new_person(telegram, "Bob"))
    for text in ("stats one", "stats two"):
        ann.send_text(text)
        await ann.reply_text()
    note = make_voice_note(1.0, freq=next(_tones))
    bob.send_voice(note, duration=1)
    await bob.reply("sendVoice")
    gateway.when("/chat/completions", last_user_text_contains("stats fail")).reply_status(500)
    bob.send_text("stats fail")  # failed: not counted
    await bob.reply_text()

    boss = Conversation(telegram, *telegram.private_chat(ADMIN_ID, first_name="Root"))
    boss.send_text("/stats")
    stats = await boss.reply_text()
    assert "users: 3" in stats and "active today: 3" in stats
    rows = _stats_rows(stats)
    assert rows["chat"][:2] == (2, 2) and rows["voice"][:2] == (1, 1)
    assert all(rows[kind][:2] == (0, 0) for kind in ("vision", "edit", "draw", "imagine"))
    assert rows["chat"][2] > 0 and rows["chat"][2] == rows["chat"][3]  # tokens today = this month


def _stats_rows(text: str) -> dict[str, tuple[int, int, int, int]]:
    rows: dict[str, Any] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[1].isdigit():
            rows[parts[0]] = tuple(int(part) for part in parts[1:])
    return rows


async def test_menus_are_registered_for_everyone_and_for_each_admin(start_bot: StartBot) -> None:
    process = await start_bot(ADMIN_IDS=f"{ADMIN_ID},{ADMIN_ID + 1}")
    telegram = process.telegram
    everyone = [command["command"] for command in telegram.my_commands({"type": "default"})]
    assert {"imagine", "draw", "edit", "blend", "seed", "reset", "quota", "cancel", "help"} <= set(everyone)
    assert "setquota" not in everyone
    for admin_id in (ADMIN_ID, ADMIN_ID + 1):
        theirs = [command["command"] for command in telegram.my_commands({"type": "chat", "chat_id": admin_id})]
        assert {"setquota", "ban", "unban", "stats", "imagine"} <= set(theirs)
