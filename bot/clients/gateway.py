"""OpenAI-format calls to the gateway: typed in, typed out, errors in words. Here the conversation's calls
(transcribe, chat, look, speak, speech); pictures and look-ups in the classes it is built from."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from bot.clients.gateway_base import ChatMessages, ModelChoice
from bot.clients.gateway_errors import Attempt, GatewayBadAnswer, GatewayRefused, translated
from bot.clients.gateway_images import ImageCalls
from bot.clients.gateway_knowledge import KnowledgeCalls
from bot.clients.gateway_results import (
    ChatReply,
    SpokenReply,
    StreamedReply,
    Transcript,
    first_message,
    gather_tool_calls,
    joined,
    read_speech,
    streamed_tool_calls,
    total_tokens,
    valid_text,
    whole_characters,
)
from bot.clients.http import TRANSPORT_TIMEOUT

log = logging.getLogger(__name__)

__all__ = ["SPEECH_RATE", "ChatMessages", "Gateway", "ModelChoice"]

# Speech as OpenAI's TTS sends it with response_format "pcm": 16-bit little-endian mono at 24 kHz.
SPEECH_RATE = 24000
# The most text one speech request takes (OpenAI's documented limit).
SPEECH_INPUT_LIMIT = 4096


class Gateway(ImageCalls, KnowledgeCalls):
    """The gateway's OpenAI-format endpoints through the openai SDK on the process's shared httpx client.

    Every call names a kind of work (chat, audio, …); its model is the one `models` has in use. A "model not
    served" answer moves the kind to its next model and the call is made once more with it.
    """

    async def transcribe(self, audio: bytes, filename: str, content_type: str) -> Transcript:
        """Speech to text; the file goes up as it came (Whisper reads ogg/opus, mp3, m4a, mp4 itself)."""

        def read(result: Any) -> Transcript:
            text = getattr(result, "text", None)
            if not isinstance(text, str):
                raise GatewayBadAnswer("transcription without text")
            return Transcript(text=text.strip())

        return await self._on_model(
            "transcribe",
            lambda model: self._guarded(
                "transcribe",
                self._settings.VOICE_TIMEOUT,
                lambda: self._client.audio.transcriptions.with_raw_response.create(
                    model=model, file=(filename, audio, content_type), timeout=TRANSPORT_TIMEOUT
                ),
                read,
            ),
        )

    async def chat(self, messages: ChatMessages, model: str | None = None) -> ChatReply:
        """A text answer from the chat model (or `model`, a person's pick)."""
        return await self._on_model("chat", lambda chosen: self._complete("chat", chosen, messages), model)

    async def look(self, messages: ChatMessages) -> ChatReply:
        """A text answer from the vision model; the last message carries the image(s) as data URLs."""
        return await self._on_model("vision", lambda model: self._complete("look", model, messages))

    async def _complete(self, operation: str, model: str, messages: ChatMessages) -> ChatReply:
        def read(completion: Any) -> ChatReply:
            message = first_message(completion)
            text = getattr(message, "content", None)
            if not isinstance(text, str) or not text.strip():
                if getattr(message, "refusal", None):
                    raise GatewayRefused("model refused")
                raise GatewayBadAnswer("answer without text")
            return ChatReply(text=text.strip(), tokens=total_tokens(completion))

        return await self._guarded(
            operation,
            self._settings.CHAT_TIMEOUT,
            lambda: self._client.chat.completions.with_raw_response.create(
                model=model,
                messages=list(messages),  # type: ignore[arg-type]
                timeout=TRANSPORT_TIMEOUT,
            ),
            read,
        )

    async def chat_stream(
        self,
        messages: ChatMessages,
        into: StreamedReply,
        model: str | None = None,
        tools: Sequence[dict[str, Any]] = (),
    ) -> AsyncIterator[str]:
        """The chat model's answer (or `model`'s, a person's pick) as it is written: yields the text so far after
        each piece; `into` holds the whole text and the tokens once the iteration ends. A model not served is
        known before the first piece, so the model that takes over can still answer."""
        deadline = asyncio.get_running_loop().time() + self._settings.CHAT_TIMEOUT

        async def open_stream(chosen: str) -> Any:
            async with translated("chat", None), asyncio.timeout_at(deadline), self._slots:
                return await self._client.chat.completions.with_raw_response.create(
                    model=chosen,
                    messages=list(messages),  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=TRANSPORT_TIMEOUT,
                    **_tools_option(tools),
                )

        raw = await self._on_model("chat", open_stream, model)
        async with translated("chat", None) as attempt:
            # Each wait has the deadline, rather than one timeout around the whole loop: a timeout must not
            # span the yields, where the caller's own work runs.
            attempt.request_id = raw.headers.get("x-request-id") or "-"
            stream = raw.parse()
            chunks = stream.__aiter__()
            calls: dict[int, list[str]] = {}
            try:
                while True:
                    async with asyncio.timeout_at(deadline):
                        try:
                            chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                    into.tokens = total_tokens(chunk) or into.tokens
                    choices = getattr(chunk, "choices", None) or []
                    delta = getattr(choices[0], "delta", None) if choices else None
                    gather_tool_calls(calls, delta)
                    piece = getattr(delta, "content", None)
                    if isinstance(piece, str) and piece:
                        into.text = joined(into.text, piece)
                        yield valid_text(whole_characters(into.text))
            finally:
                await stream.close()
            into.text = valid_text(into.text)
            into.tool_calls = streamed_tool_calls(calls)
            if not into.text.strip() and not into.tool_calls:
                raise GatewayBadAnswer("streamed answer without text")

    @contextlib.asynccontextmanager
    async def speak(
        self, messages: ChatMessages, voice: str | None = None, tools: Sequence[dict[str, Any]] = ()
    ) -> AsyncIterator[Callable[[], Awaitable[SpokenReply]]]:
        """Ask the audio model for a spoken answer; yields as soon as the answer's headers are in, with a function
        that reads its body (the transcript and the WAV bytes).

        A WAV answer is large (5 s is 320 KB of base64). Leaving the body on the wire until the caller is ready
        to encode it keeps memory flat when hundreds of answers arrive at once: they wait in socket buffers,
        not in the heap.
        """
        attempt = Attempt()

        async def open_answer(model: str) -> tuple[Any, Any]:
            manager = self._client.chat.completions.with_streaming_response.create(
                model=model,
                modalities=["text", "audio"],
                audio={"voice": voice or self._settings.VOICE, "format": "wav"},  # type: ignore[typeddict-item]
                messages=list(messages),  # type: ignore[arg-type]
                timeout=TRANSPORT_TIMEOUT,
                **_tools_option(tools),
            )
            async with translated("speak", self._settings.VOICE_TIMEOUT) as opening:
                async with self._slots:
                    response = await manager.__aenter__()
                attempt.request_id = opening.request_id = response.headers.get("x-request-id") or "-"
            return manager, response

        manager, response = await self._on_model("audio", open_answer)

        async def read_answer() -> SpokenReply:
            async with translated("speak", self._settings.VOICE_TIMEOUT, attempt.request_id):
                return read_speech(await response.parse())

        try:
            yield read_answer
        finally:
            await manager.__aexit__(None, None, None)
            # An httpx response sits in a reference cycle (response <-> its stream), so its body is freed only
            # when the cycle collector runs; by then it has often reached the rarely collected oldest
            # generation, and with hundreds of answers in flight that held 30 MB of spent audio. Dropping our
            # reference and collecting the young generations frees it now, for well under a millisecond.
            response = None
            gc.collect(1)

    async def speech(self, text: str, voice: str | None = None) -> bytes:
        """The text spoken by the TTS model, as raw PCM (SPEECH_RATE, mono, 16-bit): encoded by the bot like any
        other spoken answer. Text beyond what one request takes is not spoken (the caption still shows it)."""

        async def run(model: str) -> bytes:
            async with translated("speech", self._settings.VOICE_TIMEOUT) as attempt:
                async with self._slots:
                    raw = await self._client.audio.speech.with_raw_response.create(
                        model=model,
                        voice=voice or self._settings.VOICE,  # type: ignore[arg-type]
                        input=text[:SPEECH_INPUT_LIMIT],
                        response_format="pcm",
                        timeout=TRANSPORT_TIMEOUT,
                    )
                attempt.request_id = raw.headers.get("x-request-id") or "-"
                pcm = raw.http_response.content  # read with the answer: it was not streamed
            if len(pcm) < 2:
                raise GatewayBadAnswer("speech without audio")
            return pcm

        return await self._on_model("tts", run)


def _tools_option(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    # Offered only when there are some: an empty list is refused by the API.
    return {"tools": list(tools), "tool_choice": "auto"} if tools else {}
