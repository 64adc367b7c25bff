"""The conversation turns: a typed question or a recording in, the model's answer (as text or voice) out."""

from __future__ import annotations

from dataclasses import dataclass

from bot.audio import VoiceClip, VoiceEncoder
from bot.conversations import ConversationKey, Conversations
from bot.errors import UserFacingError
from bot.gateway import ChatReply, Gateway
from bot.images import Picture, prepare_for_vision

# Asked when a photo comes without a question; the model answers in the language it is asked in.
_DESCRIBE = {"zh": "请描述这张图片。", "en": "Describe this image."}


class NothingHeard(UserFacingError):
    user_message = "I could not make out any words in that recording. Please try again."


@dataclass(frozen=True, slots=True)
class Recording:
    """Audio as the user sent it; Whisper reads the container from the file name's extension."""

    data: bytes
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class VoiceAnswer:
    heard: str  # what the user said
    said: str  # the transcript of the spoken answer
    clip: VoiceClip
    tokens: int


class Assistant:
    def __init__(self, gateway: Gateway, conversations: Conversations, encoder: VoiceEncoder) -> None:
        self._gateway = gateway
        self._conversations = conversations
        self._encoder = encoder

    # Each answer is stored in the history as soon as it exists, before it is sent: a message the user sends
    # right after seeing it (/reset, a follow-up) must find the history already complete.

    async def answer_text(self, key: ConversationKey, question: str, speaker: str = "") -> ChatReply:
        messages = await self._conversations.prompt(key, question, speaker)
        reply = await self._gateway.chat(messages)
        await self._conversations.remember(key, question, reply.text, speaker)
        return reply

    async def answer_photo(
        self, key: ConversationKey, pictures: list[Picture], question: str, speaker: str = ""
    ) -> ChatReply:
        """The vision model's answer about the pictures, with the conversation as context."""
        fitted = [await prepare_for_vision(picture) for picture in pictures]
        messages = await self._conversations.prompt(
            key, question, speaker, image_urls=[picture.data_url() for picture in fitted]
        )
        reply = await self._gateway.look(messages)
        await self._conversations.remember(key, photo_note(question, len(pictures)), reply.text, speaker)
        return reply

    async def answer_voice(self, key: ConversationKey, recording: Recording, speaker: str = "") -> VoiceAnswer:
        """Transcribe, ask the audio model with the conversation as context, and encode its WAV as a voice note."""
        transcript = await self._gateway.transcribe(recording.data, recording.filename, recording.content_type)
        if not transcript.text:
            raise NothingHeard()
        messages = await self._conversations.prompt(key, transcript.text, speaker)
        async with self._gateway.speak(messages) as read_answer, self._encoder.admission():
            reply = await read_answer()
            clip = await self._encoder.wav_to_voice(reply.wav)
        await self._conversations.remember(key, transcript.text, reply.transcript, speaker)
        return VoiceAnswer(heard=transcript.text, said=reply.transcript, clip=clip, tokens=reply.tokens)


def default_question(language_code: str | None) -> str:
    """"Describe this image", in the user's language as far as the bot speaks it."""
    return _DESCRIBE["zh"] if (language_code or "").lower().startswith("zh") else _DESCRIBE["en"]


def photo_note(question: str, count: int) -> str:
    """How a photo turn is remembered: a short note instead of the bytes, so follow-ups can refer to it."""
    what = "a photo" if count == 1 else f"{count} photos"
    return f"[sent {what}] {question}"
