"""Who a message counts as: a message sent on behalf of a chat (an anonymous group admin, a channel posting in a
group) is that chat's, with its own quota, ban and /cancel; in a forum topic, the topic's opening message is
never the target of an admin command."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import pytest

from testkit.doubles.gateway import GatewayCall, GatewayDouble, last_user_text, last_user_text_contains
from testkit.doubles.telegram_api import CHANNEL_BOT, GROUP_ANONYMOUS_BOT, Call, TelegramDouble
from testkit.doubles.telegram_spec import TelegramSpec
from tests.e2e.harness import BOT_TOKEN, StartBot, new_person
from tests.e2e.steps import Conversation

_groups = itertools.count(-1006000000001, -1)
_channels = itertools.count(-1007000000001, -1)
_markers = itertools.count(1)

shared = pytest.mark.usefixtures("bot")

NOTHING_TO_CANCEL = "There is nothing to cancel: I'm not working on anything for you."


class OnBehalf(Conversation):
    """Someone writing in `chat` on behalf of `sender_chat`: an anonymous admin when it is the group itself, a
    channel's admin "as the channel" when it is a channel. Telegram shows every one of them as the same fake user."""

    def __init__(self, telegram: TelegramDouble, chat: dict[str, Any], sender_chat: dict[str, Any]) -> None:
        super().__init__(telegram, telegram.sender_for(chat, sender_chat), chat)
        self.sender_chat = sender_chat

    def send_text(self, text: str, **options: Any) -> dict[str, Any]:
        self._sent()
        return self.telegram.send_text_as_chat(self.chat, self.sender_chat, text, **options)


def _marker(what: str) -> str:
    return f"{what}-{next(_markers)}-{time.monotonic_ns()}"


def _chat_calls(gateway: GatewayDouble, marker: str) -> list[GatewayCall]:
    return [call for call in gateway.calls_to("/chat/completions") if marker in last_user_text(call.json)]


def _quota_rows(text: str) -> dict[str, tuple[int, str]]:
    """A /quota table read: kind -> (used, limit as shown)."""
    rows = re.findall(r"^(chat|voice|vision|edit|draw|imagine|search)\s+(\d+)\s+(\S+)\s*$", text, re.MULTILINE)
    assert len(rows) == 7, f"/quota did not show all seven kinds:\n{text}"
    return {kind: (int(used), limit) for kind, used, limit in rows}


async def _said(conversation: Conversation, needle: str, timeout: float = 15.0) -> Call:
    """The first message (sent, or edited into shape while streaming) to the conversation's chat since its last
    message that holds `needle`."""
    since, chat_id = conversation.since, conversation.chat_id

    def matches(call: Call) -> bool:
        return (
            call.method in {"sendMessage", "editMessageText"}
            and call.chat_id == chat_id
            and not call.failed
            and call.at >= since
            and needle in call.result["text"]
        )

    return await conversation.telegram.wait_for(matches, timeout)


def _texts_since(conversation: Conversation) -> list[str]:
    return [
        call.result["text"]
        for call in conversation.calls_since()
        if call.method in {"sendMessage", "editMessageText"} and isinstance(call.result, dict)
    ]


# --- the double sends what Telegram sends -----------------------------------------------------------


def test_messages_on_behalf_of_a_chat_and_in_topics_look_as_on_telegram() -> None:
    telegram = TelegramDouble(BOT_TOKEN, TelegramSpec.load())  # not served: only building and checking updates
    group = telegram.group_chat(next(_groups), title="Shape Club")
    channel = telegram.channel_chat(next(_channels), title="Shape News")
    anonymous = telegram.send_text_as_chat(group, group, "hello")["message"]
    assert anonymous["from"] == GROUP_ANONYMOUS_BOT and anonymous["sender_chat"] == group
    posted = telegram.send_text_as_chat(group, channel, "news")["message"]
    assert posted["from"] == CHANNEL_BOT and posted["sender_chat"] == channel
    with pytest.raises(ValueError):
        telegram.send_text_as_chat(group, telegram.group_chat(next(_groups)), "another group cannot")

    forum = telegram.group_chat(next(_groups), title="Shape Forum", is_forum=True)
    creator, _ = new_person(telegram, "Uma")
    opener = telegram.open_topic(creator, forum, "Plans")
    thread = opener["message_id"]
    assert opener["message_thread_id"] == thread and opener["is_topic_message"] is True
    assert opener["forum_topic_created"] == {"name": "Plans", "icon_color": 0x6FB9F0}
    plain = telegram.send_text(creator, forum, "in the topic", message_thread_id=thread)["message"]
    assert (plain["message_thread_id"], plain["is_topic_message"]) == (thread, True)
    assert plain["reply_to_message"]["message_id"] == thread and "forum_topic_created" in plain["reply_to_message"]
    answer = telegram.send_text(creator, forum, "a real reply", reply_to=plain)["message"]
    assert (
        answer["message_thread_id"] == thread and answer["reply_to_message"]["message_id"] == plain["message_id"]
    )
    assert not telegram.violations


# --- quotas -------------------------------------------------------------------------------------------


async def test_each_groups_anonymous_admins_have_that_groups_own_quota(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    process = await start_bot(QUOTA_CHAT="1")
    telegram = process.telegram
    first_group = telegram.group_chat(next(_groups), title="North")
    second_group = telegram.group_chat(next(_groups), title="South")
    north, south = OnBehalf(telegram, first_group, first_group), OnBehalf(telegram, second_group, second_group)
    marker = _marker("anonymous")

    north.send_text(f"@WenwenTestBot north one {marker}")
    assert await north.reply_text() == f"echo: North: north one {marker}"
    north.send_text(f"@WenwenTestBot north two {marker}")
    refusal = await north.reply_text()
    assert "Daily limit reached for chat: 1" in refusal

    # Every anonymous admin everywhere is the same fake user: had that user paid, South would be over its limit.
    assert (await south.quota())["chat"] == (0, "1")
    south.send_text(f"@WenwenTestBot south one {marker}")
    assert await south.reply_text() == f"echo: South: south one {marker}"
    assert (await south.quota())["chat"] == (1, "1")
    assert (await north.quota())["chat"] == (1, "1")

    member = Conversation(telegram, new_person(telegram, "Nils")[0], first_group)  # writing as himself
    member.send_text(f"@WenwenTestBot member one {marker}")
    assert await member.reply_text() == f"echo: Nils: member one {marker}"
    assert [last_user_text(call.json) for call in _chat_calls(gateway, marker)] == [
        f"North: north one {marker}",
        f"South: south one {marker}",
        f"Nils: member one {marker}",
    ]


@shared
async def test_admins_set_a_chats_quota_by_its_negative_id(
    telegram: TelegramDouble, gateway: GatewayDouble, person, admin: Conversation
) -> None:
    group = telegram.group_chat(next(_groups), title="Quiet Room")
    anonymous = OnBehalf(telegram, group, group)
    admin.send_text(f"/setquota {group['id']} chat 0")
    confirmation = await admin.reply_text()
    assert str(group["id"]) in confirmation and "0 per day" in confirmation

    marker = _marker("zero")
    anonymous.send_text(f"@WenwenTestBot may I? {marker}")
    assert await anonymous.reply_text() == "chat is not available to you: your daily limit is 0."
    member = Conversation(telegram, person("Mo")[0], group)
    member.send_text(f"@WenwenTestBot and me? {marker}")
    assert await member.reply_text() == f"echo: Mo: and me? {marker}"
    assert [last_user_text(call.json) for call in _chat_calls(gateway, marker)] == [f"Mo: and me? {marker}"]

    admin.send_text(f"/quota {group['id']}")
    table = await admin.reply_text()
    assert "Quiet Room" in table and _quota_rows(table)["chat"] == (0, "0")


# --- /cancel --------------------------------------------------------------------------------------------


_SLOW_REQUESTS = {
    # kind: (gateway path, what to send, the call's text holding the marker, how long the call is held)
    "text": ("/chat/completions", "@WenwenTestBot slow question {marker}", last_user_text_contains, 2.5),
    "draw": (
        "/images/generations",
        "/draw a slow lighthouse {marker}",
        lambda marker: lambda call: marker in call.json["prompt"],
        2.5,
    ),
}


@shared
@pytest.mark.parametrize("kind", sorted(_SLOW_REQUESTS))
async def test_cancel_stops_only_the_requests_of_the_chat_it_is_sent_for(
    telegram: TelegramDouble, gateway: GatewayDouble, kind: str
) -> None:
    path, request, matcher, seconds = _SLOW_REQUESTS[kind]
    group_a = telegram.group_chat(next(_groups), title="Alpha")
    group_b = telegram.group_chat(next(_groups), title="Beta")
    alpha, beta = OnBehalf(telegram, group_a, group_a), OnBehalf(telegram, group_b, group_b)

    kept = _marker("kept")
    gateway.when(path, matcher(kept)).delay(seconds)
    alpha.send_text(request.format(marker=kept))
    await gateway.wait_for(lambda call: call.path == path and matcher(kept)(call))
    beta.send_text("/cancel")  # the same fake user as Alpha's admin, but another chat
    assert await beta.reply_text() == NOTHING_TO_CANCEL
    if kind == "draw":
        await alpha.reply("sendPhoto")
    else:
        await _said(alpha, f"echo: Alpha: slow question {kept}")
    assert not [text for text in _texts_since(alpha) if text.startswith("Stopped")]

    # Alpha's own /cancel does stop Alpha's request: the refusal above was not /cancel ignoring chats.
    stopped = _marker("stopped")
    gateway.when(path, matcher(stopped)).delay(3.5)
    alpha.send_text(request.format(marker=stopped))
    await gateway.wait_for(lambda call: call.path == path and matcher(stopped)(call))
    alpha.send_text("/cancel")
    notice = await _said(alpha, "Stopped your")
    assert "Nothing was charged" in notice.result["text"]
    await telegram.wait_idle(1.0)
    assert not alpha.calls_since("sendPhoto")
    assert not [text for text in _texts_since(alpha) if stopped in text]


# --- bans -----------------------------------------------------------------------------------------------


@shared
async def test_a_banned_channel_gets_nothing_in_a_group_whose_members_are_still_served(
    telegram: TelegramDouble, gateway: GatewayDouble, person, admin: Conversation
) -> None:
    group = telegram.group_chat(next(_groups), title="Readers")
    channel = telegram.channel_chat(next(_channels), title="Loud News", username="loud_news_test")
    as_channel = OnBehalf(telegram, group, channel)
    member = Conversation(telegram, person("Lea")[0], group)
    admin.send_text(f"/ban {channel['id']}")
    assert "banned" in await admin.reply_text()

    marker = _marker("banned-channel")
    calls_before = len(gateway.calls)
    as_channel.send_text(f"@WenwenTestBot buy our stuff {marker}")
    as_channel.send_text("/quota")
    await telegram.wait_idle(1.0)
    assert not telegram.sent_to(group["id"])
    assert len(gateway.calls) == calls_before

    member.send_text(f"@WenwenTestBot is the news true? {marker}")
    assert await member.reply_text() == f"echo: Lea: is the news true? {marker}"

    admin.send_text(f"/unban {channel['id']}")
    assert "again" in await admin.reply_text()
    as_channel.send_text(f"@WenwenTestBot we are back {marker}")
    assert await as_channel.reply_text() == f"echo: Loud News: we are back {marker}"
    assert [last_user_text(call.json) for call in _chat_calls(gateway, marker)] == [
        f"Lea: is the news true? {marker}",
        f"Loud News: we are back {marker}",
    ]
    admin.send_text(f"/quota {channel['id']}")
    table = await admin.reply_text()
    assert "Loud News" in table and _quota_rows(table)["chat"][0] == 1


@shared
async def test_banning_a_group_bars_its_anonymous_admins_but_not_its_members(
    telegram: TelegramDouble, gateway: GatewayDouble, person, admin: Conversation
) -> None:
    group = telegram.group_chat(next(_groups), title="Masked Club")
    anonymous = OnBehalf(telegram, group, group)
    member = Conversation(telegram, person("Kim")[0], group)
    admin.send_text(f"/ban {group['id']}")
    assert "banned" in await admin.reply_text()

    marker = _marker("banned-group")
    calls_before = len(gateway.calls)
    anonymous.send_text(f"@WenwenTestBot anyone home? {marker}")
    anonymous.send_text("/quota")
    await telegram.wait_idle(1.0)
    assert not telegram.sent_to(group["id"])
    assert len(gateway.calls) == calls_before

    member.send_text(f"@WenwenTestBot I am just a member {marker}")
    assert await member.reply_text() == f"echo: Kim: I am just a member {marker}"
    assert (await member.quota())["chat"] == (1, "50")

    admin.send_text(f"/unban {group['id']}")
    assert "again" in await admin.reply_text()
    anonymous.send_text(f"@WenwenTestBot and now? {marker}")
    assert await anonymous.reply_text() == f"echo: Masked Club: and now? {marker}"


# --- forum topics -------------------------------------------------------------------------------------


@shared
async def test_a_topics_opening_message_is_never_an_admin_commands_target(
    telegram: TelegramDouble, person, admin: Conversation
) -> None:
    forum = telegram.group_chat(next(_groups), title="Workshop", is_forum=True)
    creator_user, _ = person("Ivy")
    opener = telegram.open_topic(creator_user, forum, "Ideas")
    thread = opener["message_thread_id"]
    boss = Conversation(telegram, admin.user, forum)
    creator = Conversation(telegram, creator_user, forum)

    # With no explicit reply, Telegram delivers /ban as a reply to the opening message, which Ivy sent.
    ban = boss.send_text("/ban", message_thread_id=thread)["message"]
    assert ban["reply_to_message"]["message_id"] == thread
    answer = await boss.reply("sendMessage")
    assert answer.result["text"].startswith("Usage: /ban")
    assert answer.params.get("message_thread_id") == thread
    creator.send_text("@WenwenTestBot am I still welcome?", message_thread_id=thread)
    assert await creator.reply_text() == "echo: Ivy: am I still welcome?"

    boss.send_text("/setquota imagine 0", message_thread_id=thread)
    assert (await boss.reply_text()).startswith("Usage: /setquota")
    admin.send_text(f"/quota {creator_user['id']}")
    assert _quota_rows(await admin.reply_text())["imagine"] == (0, "10")

    # An explicit reply inside the topic still names its target.
    member_user, _ = person("Jo")
    chatter = telegram.send_text(member_user, forum, "just chatting in the topic", message_thread_id=thread)
    boss.send_text("/setquota imagine 3", reply_to=chatter, message_thread_id=thread)
    confirmation = await boss.reply_text()
    assert str(member_user["id"]) in confirmation and "3 per day" in confirmation
    admin.send_text(f"/quota {member_user['id']}")
    assert _quota_rows(await admin.reply_text())["imagine"] == (0, "3")
    admin.send_text(f"/quota {creator_user['id']}")
    assert _quota_rows(await admin.reply_text())["imagine"] == (0, "10")


# --- settings ------------------------------------------------------------------------------------------


def _settings_button(message: dict[str, Any], starts: str) -> str:
    rows = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for row in rows for b in row if b["text"].lstrip("✓ ").startswith(starts))


@shared
async def test_a_chats_settings_are_changed_only_by_its_admins(telegram: TelegramDouble, person) -> None:
    group = telegram.group_chat(next(_groups), title="Tuned Club")
    anonymous = OnBehalf(telegram, group, group)
    member_user = person("Lou")[0]
    admin_user = person("Max")[0]
    telegram.chat_admins[group["id"]] = {admin_user["id"]}

    anonymous.send_text("/settings")
    menu = await anonymous.reply("sendMessage")
    assert "Texts are answered with text" in menu.result["text"]

    async def press(user: dict[str, Any], starts: str) -> Call:
        shown = telegram.messages[(group["id"], menu.result["message_id"])]
        update = telegram.press_button(user, shown, _settings_button(shown, starts))
        query_id = update["callback_query"]["id"]
        answer = await telegram.wait_for_method("answerCallbackQuery", callback_query_id=query_id)
        await telegram.wait_idle(0.3)
        return answer

    # A member who is no admin of the group changes nothing: neither the group's settings nor their own.
    refused = await press(member_user, "💬")
    assert "not yours to change" in refused.params["text"] and refused.params.get("show_alert")
    # An administrator of the group may.
    await press(admin_user, "💬")
    saved = await press(admin_user, "text and voice")
    assert saved.params.get("text") == "Saved."
    anonymous.send_text("/settings")
    assert "Texts are answered with text and voice" in (await anonymous.reply("sendMessage")).result["text"]
    personal = Conversation(telegram, *new_person(telegram))
    personal.user = admin_user
    personal.chat = telegram.private_chat(admin_user["id"], first_name="Max")[1]
    personal.send_text("/settings")
    assert "Texts are answered with text\n" in (await personal.reply("sendMessage")).result["text"] + "\n"


@shared
async def test_a_persons_settings_menu_in_a_group_is_theirs_alone(telegram: TelegramDouble, person) -> None:
    group = telegram.group_chat(next(_groups), title="Busy Club")
    owner = Conversation(telegram, person("Ned")[0], group)
    other = person("Ola")[0]
    owner.send_text("/settings")
    menu = await owner.reply("sendMessage")
    update = telegram.press_button(other, menu.result, _settings_button(menu.result, "💬"))
    answer = await telegram.wait_for_method(
        "answerCallbackQuery", callback_query_id=update["callback_query"]["id"]
    )
    assert "not yours to change" in answer.params["text"]
