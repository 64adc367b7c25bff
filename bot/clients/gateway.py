"""OpenAI-format calls to the gateway: typed in, typed out, errors in words. Here the conversation's calls
(transcribe, chat, look); spoken answers, pictures and look-ups in the classes it is built from."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.clients.gateway_base import ChatMessages, ModelChoice, tools_option
from bot.clients.gateway_errors import GatewayBadAnswer, GatewayRefused, translated
from bot.clients.gateway_images import ImageCalls
from bot.clients.gateway_knowledge import KnowledgeCalls
from bot.clients.gateway_results import (
    ChatReply,
    StreamedReply,
    Transcript,
    first_message,
    gather_tool_calls,
    joined,
    streamed_tool_calls,
    total_tokens,
    valid_text,
    whole_characters,
)
from bot.clients.gateway_voice import SPEECH_RATE, VoiceCalls
from bot.clients.http import TRANSPORT_TIMEOUT

log = logging.getLogger(__name__)

__all__ = ["SPEECH_RATE", "ChatMessages", "Gateway", "ModelChoice"]


class Gateway(VoiceCalls, ImageCalls, KnowledgeCalls):
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
                    **tools_option(tools),
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
