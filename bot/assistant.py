"""The conversation turns: a typed question or a recording in, the model's answer (as text or voice) out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.clients.claude import Claude, is_claude
from bot.clients.gateway import Gateway
from bot.clients.gateway_errors import GatewayBadAnswer, ModelNotServed
from bot.clients.gateway_results import ChatReply, SpokenReply, StreamedReply, ToolCall
from bot.clients.gateway_voice import SPEECH_RATE, AudioNotStreamed
from bot.conversations import ConversationKey, Conversations
from bot.core.errors import UserFacingError
from bot.core.i18n import _, __
from bot.media.audio import VoiceClip, VoiceEncoder
from bot.media.images import Picture, data_urls, prepare_for_vision
from bot.memory import Memory
from bot.models import Models
from bot.tools import MAX_TOOL_ROUNDS, ToolBelt, Tools


class NothingHeard(UserFacingError):
    user_message = __("I could not make out any words in that recording. Please try again.")


@dataclass(frozen=True, slots=True)
class Recording:
    """Audio as the user sent it; Whisper reads the container from the file name's extension."""

    data: bytes
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class SpokenAnswer:
    said: str  # the transcript of the spoken answer
    clip: VoiceClip
    tokens: int


class AnswerStream:
    """A text answer being written: `async for text in stream` gives the text so far, each time it grows; when
    the iteration ends the answer has been stored, and `text` and `tokens` hold the whole of it."""

    def __init__(
        self, shown: AsyncIterator[str], reply: StreamedReply, remember: Callable[[str], Awaitable[None]]
    ) -> None:
        self._shown = shown
        self._reply = reply
        self._remember = remember
        self.text = ""
        self.tokens = 0

    async def __aiter__(self) -> AsyncIterator[str]:
        async for text in self._shown:
            yield text
        self.text, self.tokens = self._reply.text.strip(), self._reply.tokens
        await self._remember(self.text)


@dataclass(frozen=True, slots=True)
class Asked:
    """A question in a conversation: where (the chat, or topic), what, who said it (in groups), and the tools of
    the turn (None: answer without tools; the belt also says whose memories are recalled)."""

    key: ConversationKey
    question: str
    speaker: str = ""
    belt: ToolBelt | None = None


class Assistant:
    def __init__(
        self,
        gateway: Gateway,
        claude: Claude,
        models: Models,
        conversations: Conversations,
        encoder: VoiceEncoder,
        tools: Tools,
        memory: Memory,
        max_pixels: int,
    ) -> None:
        self._gateway = gateway
        self._claude = claude
        self._models = models
        self._conversations = conversations
        self._encoder = encoder
        self._tools = tools
        self._memory = memory
        self._max_pixels = max_pixels

    # Each answer is stored in the history as soon as it exists, before it is sent: a message the user sends
    # right after seeing it (/reset, a follow-up) must find the history already complete.

    async def answer_text(self, asked: Asked, model: str | None = None) -> ChatReply:
        """The chat model's answer (or `model`'s, a person's pick), whole."""
        written = self.stream_text(asked, model)
        async for _text in written:
            pass
        return ChatReply(written.text, written.tokens)

    def stream_text(self, asked: Asked, model: str | None = None) -> AnswerStream:
        """The chat model's answer (or `model`'s: a Claude model answers through the Anthropic format, without
        tools) as it is written (see AnswerStream); stored once it is whole."""
        total = StreamedReply()

        async def shown() -> AsyncIterator[str]:
            messages = await self._prompt(asked)
            if model is not None and is_claude(model):
                try:
                    async for text in self._claude.stream(model, messages, total):
                        yield text
                    return
                except ModelNotServed:
                    if total.text:
                        raise
                    # The pick is no longer served: the chat kind's own model answers instead.
            chosen = None if model is not None and is_claude(model) else model
            async for text in self._write(messages, total, chosen, asked.belt):
                yield text

        async def remember(text: str) -> None:
            await self._conversations.remember(asked.key, asked.question, text, asked.speaker)

        return AnswerStream(shown(), total, remember)

    async def answer_photo(
        self, key: ConversationKey, pictures: list[Picture], question: str, speaker: str = ""
    ) -> ChatReply:
        """The vision model's answer about the pictures, with the conversation as context."""
        fitted = [await prepare_for_vision(picture, self._max_pixels) for picture in pictures]
        messages = await self._conversations.prompt(key, question, speaker, image_urls=await data_urls(fitted))
        reply = await self._gateway.look(messages)
        await self._conversations.remember(key, photo_note(question, len(pictures)), reply.text, speaker)
        return reply

    async def hear(self, recording: Recording) -> str:
        """What was said in the recording (Whisper)."""
        transcript = await self._gateway.transcribe(recording.data, recording.filename, recording.content_type)
        if not transcript.text:
            raise NothingHeard()
        return transcript.text

    async def answer_spoken(self, asked: Asked, voice: str) -> SpokenAnswer:
        """A spoken answer, with the conversation as context, encoded as a voice note: from the audio model, or,
        when no audio model is served, the chat model's words read out by the TTS model. The tools run first
        (a picture arrives before the voice that speaks of it)."""
        if self._models.served("audio"):
            try:
                return await self._speak_with_audio_model(asked, voice)
            except ModelNotServed:
                pass  # not one audio model left: a voice note is answered in voice all the same
        return await self._speak_with_tts(asked, voice)

    async def _speak_with_audio_model(self, asked: Asked, voice: str) -> SpokenAnswer:
        messages = await self._prompt(asked)
        tokens = 0
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            offered = self._tools.specs() if asked.belt is not None and round_ < MAX_TOOL_ROUNDS else ()
            reply, clip = await self._spoken_round(messages, voice, offered)
            tokens += reply.tokens
            if clip is not None:
                await self._conversations.remember(asked.key, asked.question, reply.transcript, asked.speaker)
                return SpokenAnswer(said=reply.transcript, clip=clip, tokens=tokens)
            if not offered:
                break  # tools it was not offered: no answer to speak
            messages += await self._use_tools(asked.belt, "", reply.tool_calls)
        raise GatewayBadAnswer("the audio model kept asking for tools instead of answering")

    async def _spoken_round(
        self, messages: list[dict[str, Any]], voice: str, offered: Sequence[dict[str, Any]]
    ) -> tuple[SpokenReply, VoiceClip | None]:
        """One answer of the audio model: spoken (with its voice clip) or tool calls (no clip). Streamed into the
        encoder as it is spoken, so the voice message is ready as soon as the answer ends; a gateway that does not
        stream audio answers with one WAV, encoded once it is in."""
        try:
            async with self._gateway.speak_streamed(messages, voice, offered) as read_into:
                async with self._encoder.streaming(SPEECH_RATE) as encoding:
                    reply = await read_into(encoding.feed)
                    return reply, None if reply.tool_calls else await encoding.finish()
        except AudioNotStreamed:
            pass
        async with self._gateway.speak(messages, voice, offered) as read_answer, self._encoder.admission():
            reply = await read_answer()
            return reply, None if reply.tool_calls else await self._encoder.wav_to_voice(reply.wav)

    async def _speak_with_tts(self, asked: Asked, voice: str) -> SpokenAnswer:
        messages = await self._prompt(asked, spoken=True)
        total = StreamedReply()
        async for _text in self._write(messages, total, None, asked.belt):
            pass
        pcm = await self._gateway.speech(total.text, voice)
        async with self._encoder.admission():
            clip = await self._encoder.pcm_to_voice(pcm, SPEECH_RATE)
        await self._conversations.remember(asked.key, asked.question, total.text, asked.speaker)
        return SpokenAnswer(said=total.text, clip=clip, tokens=total.tokens)

    async def _prompt(self, asked: Asked, spoken: bool = False) -> list[dict[str, Any]]:
        """The model's messages, with the facts the person asked the bot to remember that bear on the question."""
        memories: list[str] = []
        if asked.belt is not None:
            memories = [
                recalled.fact for recalled in await self._memory.recall(asked.belt.actor_id, asked.question)
            ]
        return await self._conversations.prompt(
            asked.key, asked.question, asked.speaker, spoken=spoken, memories=memories
        )

    async def _write(
        self, messages: list[dict[str, Any]], total: StreamedReply, model: str | None, belt: ToolBelt | None
    ) -> AsyncIterator[str]:
        """The chat model's text as it is written, running the tools it asks for between rounds (at most
        MAX_TOOL_ROUNDS, then it must answer); `total` holds the whole answer and the tokens of every round."""
        said = ""
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            offered = self._tools.specs() if belt is not None and round_ < MAX_TOOL_ROUNDS else ()
            reply = StreamedReply()
            async for text in self._gateway.chat_stream(messages, reply, model, offered):
                yield _after(said, text)
            total.tokens += reply.tokens
            said = _after(said, reply.text)
            if not reply.tool_calls:
                break
            messages += await self._use_tools(belt, reply.text, reply.tool_calls)
        total.text = said

    async def _use_tools(
        self, belt: ToolBelt | None, text: str, calls: Sequence[ToolCall]
    ) -> list[dict[str, Any]]:
        """The round's messages: the model's tool calls, then each call's result."""
        assert belt is not None, "tools are offered only with a belt"
        asked = {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in calls
            ],
        }
        results = [
            {"role": "tool", "tool_call_id": call.id, "content": await self._tools.run(belt, call)}
            for call in calls
        ]
        return [asked, *results]


def _after(said: str, text: str) -> str:
    """The text of this round after what earlier rounds said."""
    if not said:
        return text
    return f"{said}\n\n{text}" if text else said


def default_question() -> str:
    """What a photo without a caption is taken to ask, in the user's language (the model answers in kind)."""
    return _("Describe this image.")


def photo_note(question: str, count: int) -> str:
    """How a photo turn is remembered: a short note instead of the bytes, so follow-ups can refer to it."""
    what = "a photo" if count == 1 else f"{count} photos"
    return f"[sent {what}] {question}"
