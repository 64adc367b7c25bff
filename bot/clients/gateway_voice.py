"""The gateway's spoken answers: from the audio model, streamed as PCM into the encoder as they are spoken (or,
from a gateway that does not stream audio, as one WAV), and speech from the TTS model."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from bot.clients.gateway_base import ChatMessages, GatewayBase, tools_option
from bot.clients.gateway_errors import (
    Attempt,
    GatewayBadAnswer,
    GatewayError,
    GatewayRefused,
    is_policy_refusal,
    translated,
)
from bot.clients.gateway_results import (
    SpokenReply,
    field,
    gather_tool_calls,
    read_speech,
    streamed_tool_calls,
    total_tokens,
    unbase64,
    valid_text,
)
from bot.clients.http import TRANSPORT_TIMEOUT

log = logging.getLogger(__name__)

# Speech as OpenAI's TTS sends it with response_format "pcm", and audio models stream with format "pcm16":
# 16-bit little-endian mono at 24 kHz.
SPEECH_RATE = 24000
# The most text one speech request takes (OpenAI's documented limit).
SPEECH_INPUT_LIMIT = 4096

PcmSink = Callable[[bytes], Awaitable[None]]
# How long a model found not to stream audio is asked for WAVs before streaming is tried again (gateways change).
UNSTREAMED_SECONDS = 3600.0


class AudioNotStreamed(GatewayError):
    """The gateway, or the model behind it, does not stream spoken answers: ask for a whole WAV instead."""


class VoiceCalls(GatewayBase):
    """Spoken answers and speech. A model found not to stream audio is asked for WAVs for a while."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unstreamed: dict[str, float] = {}  # model -> when it was found not to stream audio

    def _not_streaming(self, model: str) -> None:
        if self._streams_audio(model):
            log.warning("gateway does not stream spoken answers of %s: asking for whole WAVs for an hour", model)
        self._unstreamed[model] = time.monotonic()

    def _streams_audio(self, model: str) -> bool:
        found = self._unstreamed.get(model)
        return found is None or time.monotonic() - found > UNSTREAMED_SECONDS

    @contextlib.asynccontextmanager
    async def speak_streamed(
        self, messages: ChatMessages, voice: str | None = None, tools: Sequence[dict[str, Any]] = ()
    ) -> AsyncIterator[Callable[[PcmSink], Awaitable[SpokenReply]]]:
        """Ask the audio model for a spoken answer as a stream; yields once its headers are in, with a function
        that hands each piece of the answer's PCM (SPEECH_RATE, mono, 16-bit) to a sink as it arrives and returns
        the transcript and tokens (or the tools the model asked for). Raises AudioNotStreamed, before or while
        reading, when this gateway does not stream audio: the caller asks `speak` for a WAV instead."""
        deadline = asyncio.get_running_loop().time() + self._settings.VOICE_TIMEOUT

        async def open_stream(model: str) -> tuple[str, Any]:
            if not self._streams_audio(model):
                raise AudioNotStreamed(model)
            import openai  # prepared by the time a call is made (see GatewayBase.ready)

            async with translated("speak", None), asyncio.timeout_at(deadline), self._slots:
                try:
                    return model, await self._client.chat.completions.with_raw_response.create(
                        model=model,
                        modalities=["text", "audio"],
                        audio={"voice": voice or self._settings.VOICE, "format": "pcm16"},  # type: ignore[typeddict-item]
                        messages=list(messages),  # type: ignore[arg-type]
                        stream=True,
                        stream_options={"include_usage": True},
                        timeout=TRANSPORT_TIMEOUT,
                        **tools_option(tools),
                    )
                except openai.BadRequestError as error:
                    if is_policy_refusal(error):
                        raise
                    self._not_streaming(model)  # a 400 to a streamed audio request: streaming is what it refuses
                    raise AudioNotStreamed(model) from None

        model, raw = await self._on_model("audio", open_stream)

        async def read_into(sink: PcmSink) -> SpokenReply:
            reply = await self._read_spoken_stream(raw, deadline, sink)
            if reply is None:
                self._not_streaming(model)
                raise AudioNotStreamed(model)
            return reply

        try:
            yield read_into
        finally:  # read or not (a turn cancelled while waiting for the encoder), the connection is let go
            await raw.http_response.aclose()

    async def _read_spoken_stream(self, raw: Any, deadline: float, sink: PcmSink) -> SpokenReply | None:
        """The stream's audio to the sink; the reply, or None when words came but no audio (a gateway that drops
        streamed audio). The events are read as plain JSON: a spoken answer is hundreds of chunks of base64,
        and the SDK's typed chunks cost more CPU than the rest of the turn."""
        async with translated("speak", None, raw.headers.get("x-request-id") or "-"):
            said: list[str] = []
            calls: dict[int, list[str]] = {}
            tokens, carry, heard = 0, "", False
            events = _sse_events(raw.http_response).__aiter__()
            while True:
                async with asyncio.timeout_at(deadline):  # the sink's own time is not the gateway's
                    try:
                        chunk = await events.__anext__()
                    except StopAsyncIteration:
                        break
                tokens = total_tokens(chunk) or tokens
                choices = field(chunk, "choices") or []
                delta = field(choices[0], "delta") if choices else None
                gather_tool_calls(calls, delta)
                if field(delta, "refusal"):
                    raise GatewayRefused("model refused")
                audio = field(delta, "audio")
                piece = field(audio, "transcript")
                if isinstance(piece, str):
                    said.append(piece)
                data = field(audio, "data")
                if isinstance(data, str) and data:
                    pcm, carry = _pcm_of(carry + data)
                    if pcm:
                        heard = True
                        await sink(pcm)
        tool_calls = tuple(streamed_tool_calls(calls))
        if tool_calls:
            return SpokenReply(transcript="", wav=b"", tokens=tokens, tool_calls=tool_calls)
        if not heard:
            if "".join(said).strip():
                return None
            raise GatewayBadAnswer("streamed audio answer without audio")
        return SpokenReply(transcript=valid_text("".join(said)).strip(), wav=b"", tokens=tokens)

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
                **tools_option(tools),
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


async def _sse_events(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, until [DONE]; an error event fails the call, as the SDK
    would."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
            continue
        if line or not data:
            continue  # comments, other fields; or a blank line with nothing gathered
        text, data = "\n".join(data), []
        if text == "[DONE]":
            return
        event = json.loads(text)  # a ValueError is an unreadable answer to translated()
        if not isinstance(event, dict) or "error" in event:
            raise GatewayBadAnswer("error event in a streamed answer")
        yield event


def _pcm_of(text: str) -> tuple[bytes, str]:
    """The PCM in the base64 received so far, and the characters short of a whole group of four (a piece of
    base64 need not end on one)."""
    whole = len(text) - len(text) % 4
    return unbase64(text[:whole], "audio"), text[whole:]
