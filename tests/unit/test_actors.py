"""Who a request counts as: a message sent on behalf of a chat (an anonymous group admin, a channel posting in a
group) counts as that chat, not as Telegram's shared service account it comes from; anything else as its sender."""

from typing import Any

from aiogram.types import Update

from bot.core.actors import Actor
from bot.telegram.identity import actor_of

GROUP = {"id": -1001234567890, "type": "supergroup", "title": "Night Owls"}
CHANNEL = {"id": -1009876543210, "type": "channel", "title": "Owl News", "username": "owlnews"}
# The accounts Telegram puts in `from` for messages sent on a chat's behalf.
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "language_code": "zh-hans"}
BOT = {"id": 999, "is_bot": True, "first_name": "Wenwen", "username": "wenwen_bot"}


def _message_update(sender: dict[str, Any], sender_chat: dict[str, Any] | None = None) -> Update:
    message: dict[str, Any] = {
        "message_id": 7,
        "date": 1764600000,
        "chat": GROUP,
        "from": sender,
        "text": "/quota",
    }
    if sender_chat is not None:
        message["sender_chat"] = sender_chat
    return Update.model_validate({"update_id": 1, "message": message})


def _actor(update: Update) -> Actor | None:
    """actor_of as the middleware calls it: with the user aiogram reports for the update."""
    event = update.message or update.callback_query
    assert event is not None
    return actor_of(update, event.from_user)


def test_an_anonymous_admin_counts_as_the_group() -> None:
    """From GroupAnonymousBot with sender_chat = the group: the group's id and title, as a chat."""
    assert _actor(_message_update(ANONYMOUS_ADMIN, GROUP)) == Actor(GROUP["id"], "Night Owls", None, is_chat=True)


def test_a_channel_posting_in_a_group_counts_as_the_channel() -> None:
    """From Channel_Bot with sender_chat = the channel: the channel's id and title, as a chat."""
    assert _actor(_message_update(CHANNEL_BOT, CHANNEL)) == Actor(CHANNEL["id"], "Owl News", None, is_chat=True)


def test_an_ordinary_message_counts_as_its_sender() -> None:
    """Ann writing as herself is Ann: her id, full name and language."""
    assert _actor(_message_update(ANN)) == Actor(42, "Ann Lee", "zh-hans", is_chat=False)


def test_a_button_counts_as_whoever_pressed_it() -> None:
    """A button under a message the bot posted in a channel (sender_chat = the channel) counts as its presser."""
    posted = {
        "message_id": 8,
        "date": 1764600000,
        "chat": CHANNEL,
        "sender_chat": CHANNEL,
        "from": BOT,
        "text": "x",
    }
    update = Update.model_validate(
        {
            "update_id": 2,
            "callback_query": {"id": "q1", "from": ANN, "chat_instance": "ci", "data": "k", "message": posted},
        }
    )
    assert _actor(update) == Actor(42, "Ann Lee", "zh-hans", is_chat=False)
