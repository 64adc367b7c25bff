"""Say it and it happens: a typed or spoken request draws, imagines, searches the web and remembers, each tool
charged to its own kind and only when it succeeds; a Chinese /imagine is rewritten into English first."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from testkit.doubles.gateway import GatewayCall, GatewayDouble, last_user_text_contains
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import Call, TelegramDouble
from testkit.media import make_voice_note
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation

shared = pytest.mark.usefixtures("bot")
_markers = itertools.count(1)
_tones = itertools.count(3100)
_groups = itertools.count(-1008000000001, -1)


def _marker(what: str) -> str:
    return f"{what} #{next(_markers)}"


def _system_of(call: GatewayCall) -> str:
    return str(call.json["messages"][0]["content"])


def _offered(call: GatewayCall) -> set[str]:
    return {tool["function"]["name"] for tool in call.json.get("tools", [])}


async def _photo(me: Conversation) -> Call:
    return await me.reply("sendPhoto", timeout=20)


async def _grid_delivered(telegram: TelegramDouble, me: Conversation, count: int = 1) -> Call:
    """The `count`-th finished Midjourney grid (a photo with buttons) in this chat, waiting for it."""
    seen: list[Call] = []
    for _ in range(count):

        def is_new_grid(call: Call) -> bool:
            return (
                call.method == "sendPhoto"
                and call.chat_id == me.chat_id
                and "reply_markup" in call.params
                and not call.failed
                and all(call is not earlier for earlier in seen)
            )

        seen.append(await telegram.wait_for(is_new_grid, timeout=25))
    return seen[-1]


@shared
async def test_a_typed_request_draws_and_is_charged_to_draw_and_chat(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    question = _marker("please draw me a fox in the snow")
    gateway.when("/chat/completions", last_user_text_contains(question)).call_tool(
        "draw_picture", {"prompt": "a red fox in deep snow"}
    )
    me.send_text(question)
    photo = await _photo(me)
    assert photo.files["photo"].data[:4] == b"\x89PNG"
    assert await me.reply_text() == "🎨 drawing: a red fox in deep snow"  # shown while it draws, then deleted
    answer = await me.reply("sendMessage", nth=1)
    assert answer.params["text"] == "after draw_picture: The picture was drawn and sent to the user."
    [drawing] = [c for c in gateway.calls_to("/images/generations") if "red fox in deep snow" in c.json["prompt"]]
    assert drawing.json["model"] == "gpt-image-1"
    first = next(c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(question)(c))
    assert {"draw_picture", "imagine_picture", "search_web", "remember_fact", "forget_fact"} <= _offered(first)
    quota = await me.quota()
    assert (quota["draw"][0], quota["chat"][0]) == (1, 1)


@shared
async def test_a_spoken_request_draws_then_answers_in_voice(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    note = make_voice_note(1.5, freq=next(_tones))
    transcript = _marker("draw me a windmill under the stars")
    gateway.set_transcript(note, transcript)
    gateway.when("/chat/completions", last_user_text_contains(transcript)).call_tool(
        "draw_picture", {"prompt": "a windmill under the stars"}
    )
    me.send_voice(note, duration=2)
    voice = await me.reply("sendVoice", timeout=20)
    photo = await _photo(me)
    assert photo.at < voice.at  # the picture first, then the voice that speaks of it
    assert voice.files["voice"].data[:4] == b"OggS"
    assert voice.params["caption"].startswith("after draw_picture:")
    spoken = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(transcript)(c)]
    assert all(c.json.get("modalities") == ["text", "audio"] for c in spoken) and len(spoken) == 2
    assert spoken[1].json["messages"][-1]["role"] == "tool"
    quota = await me.quota()
    assert (quota["draw"][0], quota["voice"][0]) == (1, 1)


@shared
async def test_an_imagine_by_words_is_tracked_like_imagine(
    telegram: TelegramDouble, gateway: GatewayDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    question = _marker("make a midjourney picture of a castle in the clouds")
    gateway.when("/chat/completions", last_user_text_contains(question)).call_tool(
        "imagine_picture", {"prompt": "a castle in the clouds, volumetric light"}
    )
    me.send_text(question)
    grid = await _grid_delivered(telegram, me)
    labels = [b["text"] for row in grid.params["reply_markup"]["inline_keyboard"] for b in row]
    assert "U1" in labels and "V4" in labels
    assert ("imagine", {"prompt": "a castle in the clouds, volumetric light"}) in [
        (kind, {"prompt": body["prompt"]}) for kind, body in midjourney.submissions
    ]
    assert (await me.quota())["imagine"][0] == 1


@shared
async def test_a_search_answer_links_its_sources(telegram: TelegramDouble, gateway: GatewayDouble, person) -> None:
    me = Conversation(telegram, *person())
    question = _marker("what is the weather in Beijing tomorrow")
    gateway.when("/chat/completions", last_user_text_contains(question)).call_tool(
        "search_web", {"query": "Beijing weather tomorrow"}
    )
    me.send_text(question)
    assert await me.reply_text() == "🔎 searching: Beijing weather tomorrow"
    answer = await me.reply("sendMessage", nth=1)
    assert answer.params["text"].startswith("after search_web: Found for")
    sources = await me.reply("sendMessage", nth=2)
    assert '<a href="https://example.com/a">' in sources.params["text"]
    assert '<a href="https://example.org/b">' in sources.params["text"]
    [search] = [c for c in gateway.calls_to("/responses") if c.json.get("input") == "Beijing weather tomorrow"]
    assert search.json["model"] == "gpt-4o-mini" and search.json["tools"] == [{"type": "web_search"}]
    assert (await me.quota())["search"][0] == 1


async def test_no_search_quota_means_no_search_and_the_model_is_told(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    process = await start_bot(QUOTA_SEARCH="0")
    me = Conversation(process.telegram, *new_person(process.telegram))
    question = _marker("search the news for me")
    gateway.when("/chat/completions", last_user_text_contains(question)).call_tool("search_web", {"query": "news"})
    searches = list(gateway.searches)
    me.send_text(question)
    assert await me.reply_text() == "search is not available to you: your daily limit is 0."
    answer = await me.reply("sendMessage", nth=1)
    assert "Not done" in answer.params["text"] and "search is not available" in answer.params["text"]
    assert gateway.searches == searches
    me.send_text("/search anything at all")
    assert await me.reply_text() == "search is not available to you: your daily limit is 0."
    assert gateway.searches == searches


@shared
async def test_search_command_answers_with_links(telegram: TelegramDouble, gateway: GatewayDouble, person) -> None:
    me = Conversation(telegram, *person())
    me.send_text("/search tallest building in Shanghai")
    assert (await me.reply_text()).startswith('Found for "tallest building in Shanghai"')
    links = await me.reply("sendMessage", nth=1)
    assert "https://example.com/a" in links.params["text"]
    me.send_text("/search")
    assert "/search <query>" in await me.reply_text()


@shared
async def test_memories_survive_reset_are_recalled_and_never_leak(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me, other = Conversation(telegram, *person("Mia's mum")), Conversation(telegram, *person("Stranger"))
    told = _marker("remember that my daughter is called Mia")
    gateway.when("/chat/completions", last_user_text_contains(told)).call_tool(
        "remember_fact", {"fact": "The user's daughter is called Mia."}
    )
    me.send_text(told)
    assert (await me.reply_text()).startswith("after remember_fact: Remembered.")
    me.send_text("/reset")
    await me.reply_text()

    asked = _marker("what is my daughter's name")
    me.send_text(asked)
    await me.reply_text()
    [call] = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(asked)(c)]
    assert "The user's daughter is called Mia." in _system_of(call)
    assert len(call.json["messages"]) == 2  # the conversation itself was forgotten by /reset

    unrelated = _marker("which trains go to the airport")
    me.send_text(unrelated)
    await me.reply_text()
    [call] = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(unrelated)(c)]
    assert "Mia" not in _system_of(call)  # nothing unrelated creeps in

    theirs = _marker("what is my daughter's name")
    other.send_text(theirs)
    await other.reply_text()
    [call] = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(theirs)(c)]
    assert "Mia" not in _system_of(call)  # another person's memories are never theirs

    me.send_text("/memory")
    assert "1. The user's daughter is called Mia." in await me.reply_text()
    me.send_text("/forget all")
    assert "(1)" in await me.reply_text()
    again = _marker("remind me, what is my daughter's name")
    me.send_text(again)
    await me.reply_text()
    [call] = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(again)(c)]
    assert "Mia" not in _system_of(call)


@shared
async def test_a_chinese_imagine_is_rewritten_in_english_and_both_are_shown(
    telegram: TelegramDouble, gateway: GatewayDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    prompt = "雪山上的红狐狸 " + str(next(_markers))
    me.send_text(f"/imagine {prompt}")
    status = await me.reply_text(timeout=20)
    [rewrite] = [c for c in gateway.calls_to("/chat/completions") if c.json.get("response_format")]
    assert rewrite.json["response_format"]["type"] == "json_schema"
    english = f"EN: {prompt}"
    assert prompt in status and english in status
    assert ("imagine", english) in [(kind, body["prompt"]) for kind, body in midjourney.submissions]
    await _grid_delivered(telegram, me)
    quota = await me.quota()
    assert (quota["imagine"][0], quota["chat"][0]) == (1, 0)  # the rewrite is part of the imagine use


@shared
async def test_an_english_imagine_goes_as_typed_and_a_failed_rewrite_sends_the_original(
    telegram: TelegramDouble, gateway: GatewayDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    typed = f"a quiet harbour at dawn {next(_markers)}"
    rewrites = len([c for c in gateway.calls_to("/chat/completions") if c.json.get("response_format")])
    me.send_text(f"/imagine {typed}")
    await me.reply_text(timeout=20)
    assert ("imagine", typed) in [(kind, body["prompt"]) for kind, body in midjourney.submissions]
    assert len([c for c in gateway.calls_to("/chat/completions") if c.json.get("response_format")]) == rewrites
    await _grid_delivered(telegram, me)

    chinese = "夜晚的港口 " + str(next(_markers))
    gateway.when("/chat/completions", lambda c: bool(c.json.get("response_format"))).reply_status(500, "down")
    me.send_text(f"/imagine {chinese}")
    await me.reply_text(timeout=20)
    assert ("imagine", chinese) in [(kind, body["prompt"]) for kind, body in midjourney.submissions]
    await _grid_delivered(telegram, me, count=2)  # nothing left polling for the tests that follow


@shared
async def test_in_a_group_the_speaker_pays_for_the_tool(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    group = telegram.group_chat(next(_groups), title="Sketch club")
    speaker = Conversation(telegram, person("Ada")[0], group)
    question = _marker("draw a cat with a hat")
    gateway.when("/chat/completions", last_user_text_contains(question)).call_tool(
        "draw_picture", {"prompt": "a cat with a hat"}
    )
    speaker.send_text(f"@WenwenTestBot {question}")
    await speaker.reply("sendPhoto", timeout=20)
    await speaker.reply("sendMessage", nth=1)  # the answer, after the status line
    quota: dict[str, Any] = await speaker.quota()
    assert quota["draw"][0] == 1
