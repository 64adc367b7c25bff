"""Typed conversation: answers, context that survives a restart, /reset, long answers, escaping, faults."""

from __future__ import annotations

import pytest

from testkit.doubles.gateway import GatewayCall, GatewayDouble, last_user_text_contains
from testkit.doubles.telegram_api import TelegramDouble
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation


async def _chat_request(gateway: GatewayDouble, text: str) -> GatewayCall:
    return await gateway.wait_for(
        lambda call: call.path.endswith("/chat/completions") and last_user_text_contains(text)(call)
    )


@pytest.mark.usefixtures("bot")
async def test_text_is_answered_by_the_chat_model(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    me.send_text("hello bot, what is 2+2?")

    assert await me.reply_text() == "echo: hello bot, what is 2+2?"
    request = (await _chat_request(gateway, "what is 2+2?")).json
    assert request["model"] == "gpt-4o-mini"
    assert "modalities" not in request
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1] == {"role": "user", "content": "hello bot, what is 2+2?"}
    assert "typing" in [call.params["action"] for call in me.calls_since("sendChatAction")]
    assert (await me.quota())["chat"] == (1, "50")


@pytest.mark.usefixtures("bot")
async def test_html_in_questions_and_answers_shows_as_typed(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    me.send_text("is <b>bold</b> & <i>x</i> < y?")
    # The Telegram double parses HTML strictly: an unescaped < or & would be a failed call, not this text.
    assert await me.reply_text() == "echo: is <b>bold</b> & <i>x</i> < y?"


@pytest.mark.usefixtures("bot")
async def test_a_4500_character_answer_arrives_as_two_valid_messages(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    paragraphs = [(f"Paragraph {n}: " + "lorem ipsum & dolor <sit> amet. " * 14).strip() for n in range(10)]
    answer = "\n\n".join(paragraphs)
    assert 4500 <= len(answer) <= 8000
    gateway.when("/chat/completions", last_user_text_contains("write me an essay")).reply_text(answer)
    me.send_text("write me an essay")

    first = await me.reply("sendMessage", nth=0)
    second = await me.reply("sendMessage", nth=1)
    texts = [first.result["text"], second.result["text"]]
    assert all(0 < len(text) <= 4096 for text in texts)
    assert "\n\n".join(texts) == answer  # cut between paragraphs, nothing lost or garbled


@pytest.mark.usefixtures("bot")
async def test_context_is_kept_and_reset_forgets_it(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    me.send_text("remember the word pineapple")
    await me.reply_text()
    me.send_text("which word did I ask you to remember?")
    await me.reply_text()
    messages = (await _chat_request(gateway, "which word did I ask")).json["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "remember the word pineapple",
        "echo: remember the word pineapple",
        "which word did I ask you to remember?",
    ]

    me.send_text("/reset")
    assert "forgotten" in await me.reply_text()
    me.send_text("do you still know the word?")
    await me.reply_text()
    messages = (await _chat_request(gateway, "do you still know the word?")).json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]


@pytest.mark.usefixtures("bot")
async def test_start_and_help_name_every_command(telegram: TelegramDouble, person) -> None:
    me = Conversation(telegram, *person())
    for command in ("/start", "/help"):
        me.send_text(command)
        guide = await me.reply_text()
        for name in ("/imagine", "/draw", "/edit", "/blend", "/seed", "/reset", "/quota", "/cancel"):
            assert name in guide, f"{command} does not mention {name}"
        assert "voice" in guide and "photo" in guide


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize("fault", ["status-500", "status-429", "timeout", "garbage", "empty-choices"])
async def test_a_failing_gateway_gets_an_apology_and_no_charge(
    telegram: TelegramDouble, gateway: GatewayDouble, person, fault: str
) -> None:
    me = Conversation(telegram, *person())
    question = f"answer me despite {fault}"
    rule = gateway.when("/chat/completions", last_user_text_contains(question))
    if fault.startswith("status-"):
        rule.reply_status(int(fault.split("-")[1]), "secret upstream detail")
    elif fault == "timeout":
        rule.delay(30).reply_text("too late")  # CHAT_TIMEOUT is 4 s in the shared process
    elif fault == "garbage":
        rule.reply_raw(200, b'{"choices": [', "application/json")
    else:
        rule.reply_json(200, {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []})
    me.send_text(question)

    apology = await me.reply_text(timeout=20)
    assert apology.startswith("Sorry")
    assert "secret upstream detail" not in apology and "{" not in apology
    assert (await me.quota())["chat"][0] == 0
    # The bot goes on serving.
    me.send_text(f"and now normally after {fault}")
    assert await me.reply_text() == f"echo: and now normally after {fault}"


async def test_context_survives_a_restart(start_bot: StartBot, gateway: GatewayDouble, tmp_path) -> None:
    process = await start_bot(tmp_path)
    me = Conversation(process.telegram, *new_person(process.telegram))
    me.send_text("my favourite colour is teal")
    await me.reply_text()
    assert await process.stop() == 0

    process = await start_bot(tmp_path)  # same folder, same database
    me.send_text("what is my favourite colour after the restart?")
    await me.reply_text()
    messages = (await _chat_request(gateway, "after the restart")).json["messages"]
    assert messages[1]["content"] == "my favourite colour is teal"
    assert messages[2]["content"] == "echo: my favourite colour is teal"
