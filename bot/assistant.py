"""The conversation turns: a typed question or a recording in, the model's answer (as text or voice) out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from bot.clients.claude import Claude, is_claude
from bot.clients.gateway import SPEECH_RATE, Gateway
from bot.clients.gateway_errors import ModelNotServed
from bot.clients.gateway_results import ChatReply, StreamedReply
from bot.conversations import ConversationKey, Conversations
from bot.core.errors import UserFacingError
from bot.core.i18n import _, __
from bot.media.audio import VoiceClip, VoiceEncoder
from bot.media.images import Picture, data_urls, prepare_for_vision
from bot.models import Models


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


class Assistant:
    def __init__(
        self,
        gateway: Gateway,
        claude: Claude,
        models: Models,
        conversations: Conversations,
        encoder: VoiceEncoder,
        max_pixels: int,
    ) -> None:
        self._gateway = gateway
        self._claude = claude
        self._models = models
        self._conversations = conversations
        self._encoder = encoder
        self._max_pixels = max_pixels

    # Each answer is stored in the history as soon as it exists, before it is sent: a message the user sends
    # right after seeing it (/reset, a follow-up) must find the history already complete.

    async def answer_text(
        self, key: ConversationKey, question: str, speaker: str = "", model: str | None = None
    ) -> ChatReply:
        """The chat model's answer (or `model`'s, a person's pick), whole."""
        written = self.stream_text(key, question, speaker, model)
        async for _text in written:
            pass
        return ChatReply(written.text, written.tokens)

    def stream_text(
        self, key: ConversationKey, question: str, speaker: str, model: str | None = None
    ) -> AnswerStream:
        """The chat model's answer (or `model`'s: a Claude model answers through the Anthropic format) as it is
        written (see AnswerStream); stored once it is whole."""
        reply = StreamedReply()

        async def shown() -> AsyncIterator[str]:
            messages = await self._conversations.prompt(key, question, speaker)
            if model is not None and is_claude(model):
                try:
                    async for text in self._claude.stream(model, messages, reply):
                        yield text
                    return
                except ModelNotServed:
                    if reply.text:
                        raise
                    # The pick is no longer served: the chat kind's own model answers instead.
            async for text in self._gateway.chat_stream(
                messages, reply, None if model and is_claude(model) else model
            ):
                yield text

        async def remember(text: str) -> None:
            await self._conversations.remember(key, question, text, speaker)

        return AnswerStream(shown(), reply, remember)

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

    async def answer_spoken(self, key: ConversationKey, question: str, speaker: str, voice: str) -> SpokenAnswer:
        """A spoken answer, with the conversation as context, encoded as a voice note: from the audio model, or,
        when no audio model is served, the chat model's words read out by the TTS model."""
        if self._models.served("audio"):
            try:
                return await self._speak_with_audio_model(key, question, speaker, voice)
            except ModelNotServed:
                pass  # not one audio model left: a voice note is answered in voice all the same
        return await self._speak_with_tts(key, question, speaker, voice)

    async def _speak_with_audio_model(
        self, key: ConversationKey, question: str, speaker: str, voice: str
    ) -> SpokenAnswer:
        messages = await self._conversations.prompt(key, question, speaker)
        async with self._gateway.speak(messages, voice) as read_answer, self._encoder.admission():
            reply = await read_answer()
            clip = await self._encoder.wav_to_voice(reply.wav)
        await self._conversations.remember(key, question, reply.transcript, speaker)
        return SpokenAnswer(said=reply.transcript, clip=clip, tokens=reply.tokens)

    async def _speak_with_tts(self, key: ConversationKey, question: str, speaker: str, voice: str) -> SpokenAnswer:
        messages = await self._conversations.prompt(key, question, speaker, spoken=True)
        reply = await self._gateway.chat(messages)
        pcm = await self._gateway.speech(reply.text, voice)
        async with self._encoder.admission():
            clip = await self._encoder.pcm_to_voice(pcm, SPEECH_RATE)
        await self._conversations.remember(key, question, reply.text, speaker)
        return SpokenAnswer(said=reply.text, clip=clip, tokens=reply.tokens)


def default_question() -> str:
    """What a photo without a caption is taken to ask, in the user's language (the model answers in kind)."""
    return _("Describe this image.")


def photo_note(question: str, count: int) -> str:
    """How a photo turn is remembered: a short note instead of the bytes, so follow-ups can refer to it."""
    what = "a photo" if count == 1 else f"{count} photos"
    return f"[sent {what}] {question}"
