"""A voice note in, a real voice message out: through the real bot process and both doubles."""

from __future__ import annotations

import hashlib

import pytest

from testkit.bot_process import BotProcess
from testkit.doubles.gateway import GatewayCall, GatewayDouble, last_user_text_contains
from testkit.doubles.telegram_api import TelegramDouble
from testkit.media import (
    decode_with_ffmpeg,
    inspect_ogg_opus,
    make_audio_file,
    make_video_note,
    make_voice_note,
)
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation

pytestmark = pytest.mark.usefixtures("bot")


def _transcriptions_of(gateway: GatewayDouble, data: bytes) -> list[GatewayCall]:
    return [call for call in gateway.calls_to("/audio/transcriptions") if call.uploads("file")[0].data == data]


async def _speak_request(gateway: GatewayDouble, heard: str) -> GatewayCall:
    return await gateway.wait_for(
        lambda call: (
            call.path.endswith("/chat/completions")
            and (call.json or {}).get("modalities") == ["text", "audio"]
            and last_user_text_contains(heard)(call)
        )
    )


async def test_voice_note_is_answered_with_a_real_voice_message(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    note = make_voice_note(1.5, freq=301)
    gateway.set_transcript(note, "what is the weather like on Mars")
    me.send_voice(note, duration=2)

    sent = await me.reply("sendVoice")
    ogg = sent.files["voice"].data
    info = inspect_ogg_opus(ogg)
    assert info.channels == 1
    assert info.input_sample_rate == 48000
    assert info.duration == pytest.approx(2.0, abs=0.05)  # the double speaks for 2.0 s
    seconds, rate, channels = decode_with_ffmpeg(ogg)
    assert (rate, channels) == (48000, 1) and seconds == pytest.approx(2.0, abs=0.05)
    assert sent.params["duration"] == 2
    assert sent.result["caption"] == "spoken: what is the weather like on Mars"

    # Whisper got the note exactly as Telegram delivered it, named so it knows the container.
    [transcription] = _transcriptions_of(gateway, note)
    upload = transcription.uploads("file")[0]
    assert upload.filename == "voice.ogg"
    assert transcription.fields["model"] == "whisper-1"
    # The audio model was asked for text and audio streamed as PCM, with a system prompt before the question.
    request = (await _speak_request(gateway, "what is the weather like on Mars")).json
    assert request["model"] == "gpt-4o-audio-preview"
    assert request["audio"] == {"voice": "alloy", "format": "pcm16"} and request["stream"] is True
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1] == {"role": "user", "content": "what is the weather like on Mars"}
    # The user saw that the bot was recording while it worked.
    actions = [call.params["action"] for call in me.calls_since("sendChatAction")]
    assert "record_voice" in actions


async def test_later_voice_turns_carry_the_conversation(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    first, second = make_voice_note(1.0, freq=302), make_voice_note(1.0, freq=303)
    gateway.set_transcript(first, "my cat is called Miso")
    gateway.set_transcript(second, "what is my cat called")
    me.send_voice(first, duration=1)
    await me.reply("sendVoice")
    me.send_voice(second, duration=1)
    await me.reply("sendVoice")

    messages = (await _speak_request(gateway, "what is my cat called")).json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "my cat is called Miso"
    # The earlier answer goes back as its transcript: the gateway may not keep audio ids.
    assert messages[2]["content"] == "spoken: my cat is called Miso"


async def test_a_streamed_answer_is_encoded_as_it_arrives_with_its_whole_transcript(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    note = make_voice_note(1.0, freq=307)
    heard = "tell me about the sea, slowly"
    said = "The sea is wide, and it is deep; the tide comes in twice a day. 🌊"
    gateway.set_transcript(note, heard)
    gateway.when("/chat/completions", last_user_text_contains(heard)).reply_audio(
        seconds=3.5, transcript=said
    ).paced(12, 0.05)
    me.send_voice(note, duration=1)

    sent = await me.reply("sendVoice")
    ogg = sent.files["voice"].data
    info = inspect_ogg_opus(ogg)
    assert (info.channels, info.input_sample_rate) == (1, 48000)
    assert info.duration == pytest.approx(3.5, abs=0.05)
    seconds, rate, channels = decode_with_ffmpeg(ogg)
    assert (rate, channels) == (48000, 1) and seconds == pytest.approx(3.5, abs=0.05)
    assert sent.params["duration"] == 4  # 3.5 s rounds to 4 (Telegram takes whole seconds)
    assert sent.result["caption"] == said  # joined from twelve pieces, the emoji whole
    [request] = [c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(heard)(c)]
    assert request.json["stream"] is True and request.json["audio"]["format"] == "pcm16"


@pytest.mark.parametrize(("header", "how"), [("zero", "refuses"), ("ffff", "words only")])
async def test_a_gateway_that_does_not_stream_audio_is_asked_for_whole_wavs(
    start_bot: StartBot, gateway: GatewayDouble, header: str, how: str
) -> None:
    """It refuses streamed audio (a 400), or streams the words without the sound: the turn asks again for a WAV
    (whose size fields a streaming encoder may have left at 0 or 0xFFFFFFFF), and later turns ask for WAVs
    straight away."""
    process = await start_bot()
    me = Conversation(process.telegram, *new_person(process.telegram))
    notes = [make_voice_note(1.0, freq=freq) for freq in ((304, 308) if header == "zero" else (305, 309))]
    heard = [f"tell me a long story {header} {n}" for n in range(2)]
    for note, words in zip(notes, heard, strict=True):
        gateway.set_transcript(note, words)
        gateway.when("/chat/completions", last_user_text_contains(words)).reply_audio(
            seconds=3.5, transcript="once upon a time", header=header
        ).audio_not_streamed(how)

    me.send_voice(notes[0], duration=1)
    sent = await me.reply("sendVoice")
    info = inspect_ogg_opus(sent.files["voice"].data)
    assert info.duration == pytest.approx(3.5, abs=0.05)
    assert sent.params["duration"] == 4 and sent.result["caption"] == "once upon a time"
    first = [c.json for c in gateway.calls_to("/chat/completions") if last_user_text_contains(heard[0])(c)]
    assert [(body.get("stream", False), body["audio"]["format"]) for body in first] == [
        (True, "pcm16"),
        (False, "wav"),
    ]

    me.send_voice(notes[1], duration=1)
    assert inspect_ogg_opus((await me.reply("sendVoice")).files["voice"].data).duration == pytest.approx(
        3.5, abs=0.05
    )
    second = [c.json for c in gateway.calls_to("/chat/completions") if last_user_text_contains(heard[1])(c)]
    assert [(body.get("stream", False), body["audio"]["format"]) for body in second] == [(False, "wav")]
    assert (await me.quota())["voice"][0] == 2  # each turn charged once, however it was asked


@pytest.mark.parametrize(
    ("kind", "expected_name"),
    [("mp3", "audio.mp3"), ("m4a", "audio.m4a"), ("video_note", "video_note.mp4")],
)
async def test_audio_files_and_video_notes_are_heard_too(
    telegram: TelegramDouble, gateway: GatewayDouble, person, kind: str, expected_name: str
) -> None:
    me = Conversation(telegram, *person())
    if kind == "video_note":
        data = make_video_note(1.0)
        me.send_video_note(data, duration=1)
    else:
        data = make_audio_file(1.0, kind, freq=440 + len(kind))
        names = {"mp3": ("talk.mp3", "audio/mpeg"), "m4a": ("memo.m4a", "audio/mp4")}
        file_name, mime_type = names[kind]
        me.send_audio(data, duration=1, file_name=file_name, mime_type=mime_type)
    heard = f"this came as {kind} {hashlib.sha256(data).hexdigest()[:6]}"
    gateway.set_transcript(data, heard)

    sent = await me.reply("sendVoice")
    assert sent.result["caption"] == f"spoken: {heard}"
    [transcription] = _transcriptions_of(gateway, data)
    assert transcription.uploads("file")[0].filename == expected_name


async def test_a_long_spoken_answer_has_a_short_caption_and_the_full_text_after_it(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    note = make_voice_note(1.0, freq=306)
    gateway.set_transcript(note, "explain everything")
    story = " ".join(f"Sentence {n} of the answer, said <aloud> & clearly." for n in range(60))
    assert len(story) > 1024
    gateway.when("/chat/completions", last_user_text_contains("explain everything")).reply_audio(
        seconds=1.0, transcript=story
    )
    me.send_voice(note, duration=1)

    voice = await me.reply("sendVoice")
    caption = voice.result["caption"]
    assert len(caption) <= 1024 and caption.endswith("…")
    assert story.startswith(caption[:-1])
    follow_up = await me.reply("sendMessage")
    assert follow_up.result["text"] == story  # special characters arrive as typed


async def test_a_25_mb_voice_note_is_refused_without_downloading_it(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    note = make_voice_note(1.0, freq=307)
    downloads, transcriptions = telegram.get_file_calls, len(gateway.calls_to("/audio/transcriptions"))
    me.send_voice(note, duration=60, file_size=25 * 1024 * 1024)

    answer = await me.reply_text()
    assert "20 MB" in answer
    await telegram.wait_idle(0.5)
    assert telegram.get_file_calls == downloads
    assert len(gateway.calls_to("/audio/transcriptions")) == transcriptions
    assert not me.calls_since("sendVoice")


async def test_a_voice_note_over_the_length_limit_is_refused(
    telegram: TelegramDouble, gateway: GatewayDouble, person
) -> None:
    me = Conversation(telegram, *person())
    downloads = telegram.get_file_calls
    me.send_voice(make_voice_note(1.0, freq=308), duration=3600)

    answer = await me.reply_text()
    assert "60 min" in answer and "10 min" in answer  # its length and the limit (MAX_VOICE_SECONDS=600)
    await telegram.wait_idle(0.5)
    assert telegram.get_file_calls == downloads


@pytest.mark.parametrize("fault", ["status-500", "timeout", "broken-audio", "garbage"])
async def test_a_failing_gateway_gets_an_apology_and_no_charge(
    telegram: TelegramDouble, gateway: GatewayDouble, person, fault: str
) -> None:
    me = Conversation(telegram, *person())
    note = make_voice_note(1.0, freq=310 + len(fault))
    heard = f"please fail with {fault}"
    gateway.set_transcript(note, heard)
    rule = gateway.when("/chat/completions", last_user_text_contains(heard))
    if fault == "status-500":
        rule.reply_status(500, "upstream exploded")
    elif fault == "timeout":
        rule.delay(30).reply_audio(seconds=1.0)  # VOICE_TIMEOUT is 6 s in the shared process
    elif fault == "broken-audio":
        rule.reply_json(
            200,
            {
                "id": "chatcmpl-x",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4o-audio-preview",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "logprobs": None,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "refusal": None,
                            "audio": {"id": "a", "data": "UklGRg==", "expires_at": 1, "transcript": "hi"},
                        },
                    }
                ],
            },
        )
    else:
        rule.reply_raw(200, b"<html>502 Bad Gateway</html>", "text/html")
    me.send_voice(note, duration=1)

    apology = await me.reply_text(timeout=20)
    assert apology.startswith("Sorry")
    assert "exploded" not in apology and "{" not in apology  # nothing of the upstream answer
    assert not me.calls_since("sendVoice")
    assert (await me.quota())["voice"][0] == 0


async def test_a_quota_of_one_refuses_the_second_voice_note(start_bot: StartBot, gateway: GatewayDouble) -> None:
    process: BotProcess = await start_bot(QUOTA_VOICE="1")
    me = Conversation(process.telegram, *new_person(process.telegram))
    first, second = make_voice_note(1.0, freq=320), make_voice_note(1.0, freq=321)
    me.send_voice(first, duration=1)
    await me.reply("sendVoice")

    me.send_voice(second, duration=1)
    refusal = await me.reply_text()
    assert "voice" in refusal and "1" in refusal
    await process.telegram.wait_idle(0.5)
    assert not _transcriptions_of(gateway, second)
    assert (await me.quota())["voice"] == (1, "1")
