"""Models come and go: the gateway's catalog decides which model of each list is used, a "model not served"
answer hands the kind to the next one (admins are told once), a voice note is answered in voice without any
audio model, admins change lists for good, and each person may pick their chat model, Claude included."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.doubles.gateway import DEFAULT_CATALOG, GatewayDouble, last_user_text_contains
from testkit.doubles.telegram_api import TelegramDouble
from testkit.media import decode_with_ffmpeg, inspect_ogg_opus, make_voice_note
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation

ADMIN = 90_777
_markers = itertools.count(1)
_tones = itertools.count(2600)


@pytest.fixture(autouse=True)
def catalog_restored(gateway: GatewayDouble) -> Iterator[None]:
    """Each test changes the shared gateway's catalog as it needs; the next finds the default again."""
    yield
    gateway.catalog = dict.fromkeys(DEFAULT_CATALOG)
    gateway.unroutable.clear()


def _marker(what: str) -> str:
    return f"{what} {next(_markers)}"


def _chat_models(gateway: GatewayDouble, marker: str) -> list[str]:
    """The models the bot asked for chat answers to a message holding `marker`, in order."""
    return [
        call.json["model"]
        for call in gateway.calls_to("/chat/completions")
        if last_user_text_contains(marker)(call)
    ]


def _admin(telegram: TelegramDouble) -> Conversation:
    user, chat = telegram.private_chat(ADMIN, first_name="Root")
    return Conversation(telegram, user, chat)


async def test_the_catalog_picks_the_first_listed_model_and_the_unlisted_is_never_called(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    process = await start_bot(CHAT_MODEL="gpt-not-in-the-catalog,gpt-5-mini")
    me = Conversation(process.telegram, *new_person(process.telegram))
    question = _marker("which model")
    me.send_text(question)
    assert await me.reply_text() == f"echo: {question}"
    assert _chat_models(gateway, question) == ["gpt-5-mini"]


async def test_a_model_not_served_hands_over_to_the_next_and_admins_hear_once(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    gateway.unroutable.add("gpt-4o-mini")  # listed, but new-api has no channel for it
    process = await start_bot(CHAT_MODEL="gpt-4o-mini,gpt-5-mini", ADMIN_IDS=str(ADMIN))
    telegram = process.telegram
    admin = _admin(telegram)
    me = Conversation(telegram, *new_person(telegram))
    first, second = _marker("fall back"), _marker("and again")
    me.send_text(first)
    assert await me.reply_text() == f"echo: {first}"  # answered, by the model that took over
    me.send_text(second)
    assert await me.reply_text() == f"echo: {second}"
    assert _chat_models(gateway, first) == ["gpt-4o-mini", "gpt-5-mini"]
    assert _chat_models(gateway, second) == ["gpt-5-mini"]  # the failed model is not tried every turn
    await telegram.wait_idle(0.5)
    told = [call.params["text"] for call in admin.calls_since("sendMessage")]
    assert len(told) == 1 and "gpt-4o-mini" in told[0] and "gpt-5-mini" in told[0]
    assert (await me.quota())["chat"][0] == 2  # the failed call cost nothing: two answers, two uses


async def test_no_model_left_is_an_apology_and_no_charge(start_bot: StartBot, gateway: GatewayDouble) -> None:
    gateway.unroutable.add("gpt-4o-mini")
    process = await start_bot(CHAT_MODEL="gpt-4o-mini")
    me = Conversation(process.telegram, *new_person(process.telegram))
    me.send_text(_marker("nobody home"))
    assert "not available" in await me.reply_text()
    assert (await me.quota())["chat"][0] == 0


@pytest.mark.parametrize("how", ["unlisted", "unroutable"])
async def test_a_voice_note_is_answered_in_voice_without_an_audio_model(
    start_bot: StartBot, gateway: GatewayDouble, how: str
) -> None:
    for model in ("gpt-4o-audio-preview", "gpt-audio"):
        if how == "unlisted":
            gateway.catalog.pop(model, None)
        else:
            gateway.unroutable.add(model)
    process = await start_bot()
    me = Conversation(process.telegram, *new_person(process.telegram))
    note = make_voice_note(1.5, freq=next(_tones))
    question = _marker("speak without an audio model")
    gateway.set_transcript(note, question)
    me.send_voice(note, duration=2)
    voice = await me.reply("sendVoice", timeout=20)
    ogg = voice.files["voice"].data
    info = inspect_ogg_opus(ogg)
    assert info.channels == 1 and info.duration > 0.3
    assert decode_with_ffmpeg(ogg)[1:] == (48000, 1)  # a real voice message: 48 kHz mono, decodable
    assert voice.params["duration"] >= 1
    [speech] = [call for call in gateway.calls_to("/audio/speech") if question in call.json["input"]]
    assert speech.json["model"] == "gpt-4o-mini-tts" and speech.json["voice"] == "alloy"
    assert speech.json["input"] == f"echo: {question}"
    assert voice.params.get("caption") == f"echo: {question}"  # the words of the answer, as with an audio model
    spoken = [call for call in gateway.calls_to("/chat/completions") if call.json.get("modalities")]
    assert all(call.status == 503 for call in spoken if last_user_text_contains(question)(call))
    assert (await me.quota())["voice"][0] == 1


async def test_setmodel_is_checked_applied_at_once_and_kept(
    start_bot: StartBot, gateway: GatewayDouble, tmp_path: Path
) -> None:
    process = await start_bot(tmp_path, ADMIN_IDS=str(ADMIN))
    telegram = process.telegram
    admin = _admin(telegram)
    admin.send_text("/setmodel chat gpt-nowhere,gpt-5-mini")
    refused = await admin.reply_text()
    assert "gpt-nowhere" in refused and "nothing was changed" in refused
    someone = Conversation(telegram, *new_person(telegram))
    someone.send_text("/setmodel chat gpt-5-mini")
    assert "admins only" in await someone.reply_text()

    admin.send_text("/setmodel chat gpt-5-mini,gpt-4o-mini")
    assert "gpt-5-mini" in await admin.reply_text()
    question = _marker("set by an admin")
    someone.send_text(question)
    await someone.reply_text()
    assert _chat_models(gateway, question) == ["gpt-5-mini"]

    assert await process.stop() == 0
    await start_bot(tmp_path, ADMIN_IDS=str(ADMIN))
    again = _marker("once restarted")
    someone.send_text(again)
    await someone.reply_text()
    assert _chat_models(gateway, again) == ["gpt-5-mini"]

    gateway.when("/models").reply_status(500, "catalog down")
    admin.send_text("/setmodel chat gpt-4o-mini")
    assert "can't read the gateway's list of models" in await admin.reply_text()


async def test_models_shows_each_kind_with_shutdown_dates_and_admins_are_warned(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    soon = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    gateway.catalog["gpt-4o-mini"] = soon
    gateway.catalog["gpt-4o"] = "2027-01-14"
    process = await start_bot(ADMIN_IDS=str(ADMIN))
    telegram = process.telegram
    admin = _admin(telegram)
    warning = await telegram.wait_for(
        lambda call: (
            call.method == "sendMessage" and call.chat_id == ADMIN and "shut down soon" in call.params["text"]
        )
    )
    assert "gpt-4o-mini" in warning.params["text"] and soon in warning.params["text"]
    assert "gpt-4o<" not in warning.params["text"]  # 2027 is not within 30 days

    admin.send_text("/models")
    shown = await admin.reply_text()
    for kind in ("chat", "vision", "audio", "transcribe", "image", "tts", "search", "embedding"):
        assert f"{kind}:" in shown
    assert "2027-01-14" in shown and soon in shown
    someone = Conversation(telegram, *new_person(telegram))
    someone.send_text("/models")
    assert "admins only" in await someone.reply_text()


async def test_a_person_picks_claude_and_only_their_answers_come_from_it(
    start_bot: StartBot, gateway: GatewayDouble
) -> None:
    process = await start_bot(CHAT_MODELS="claude-sonnet-4-5")
    telegram = process.telegram
    me, other = (Conversation(telegram, *new_person(telegram, name)) for name in ("Cleo", "Otto"))
    before = _marker("before the switch")
    me.send_text(before)
    assert await me.reply_text() == f"echo: {before}"

    me.send_text("/model")
    menu = await me.reply("sendMessage")
    labels = [button["text"] for row in menu.params["reply_markup"]["inline_keyboard"] for button in row]
    assert labels == ["✓ gpt-4o-mini", "claude-sonnet-4-5"]
    claude_button = menu.params["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
    press = telegram.press_button(me.user, menu.result, claude_button)
    await telegram.wait_for_method("answerCallbackQuery", callback_query_id=press["callback_query"]["id"])

    question = _marker("hello claude")
    me.send_text(question)
    assert await me.reply_text() == f"claude: {question}"
    [call] = [c for c in gateway.calls_to("/v1/messages") if question in str(c.json["messages"][-1]["content"])]
    assert call.json["model"] == "claude-sonnet-4-5" and call.json["stream"] is True
    assert call.json["max_tokens"] > 0 and "answer in English" in call.json["system"]
    assert before in str(call.json["messages"])  # the same history, whichever model answers
    assert not [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(question)(c)]

    theirs = _marker("not claude")
    other.send_text(theirs)
    assert await other.reply_text() == f"echo: {theirs}"
    assert (await me.quota())["chat"][0] == 2  # the same quota too
