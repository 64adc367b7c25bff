"""OpenAI-format calls to the gateway (transcribe, chat, speak): typed in, typed out, errors in words."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import httpx
import openai

from bot.clients.gateway_errors import (
    Attempt,
    GatewayAnswerTooLarge,
    GatewayBadAnswer,
    GatewayError,
    GatewayRefused,
    GatewayUnavailable,
    ModelNotServed,
    translated,
)
from bot.clients.gateway_results import (
    ChatReply,
    GeneratedImage,
    SpokenReply,
    StreamedReply,
    Transcript,
    first_message,
    joined,
    read_image,
    read_speech,
    total_tokens,
    unbase64,
    valid_text,
    whole_characters,
)
from bot.clients.http import TRANSPORT_TIMEOUT, DownloadFailed, DownloadTooLarge, download
from bot.config import Settings
from bot.core.errors import Refusal
from bot.media.images import Picture, PictureTooLarge, check_picture, sniff_mime

log = logging.getLogger(__name__)

T = TypeVar("T")


ChatMessages = Sequence[dict[str, Any]]
# Speech as OpenAI's TTS sends it with response_format "pcm": 16-bit little-endian mono at 24 kHz.
SPEECH_RATE = 24000
# The most text one speech request takes (OpenAI's documented limit).
SPEECH_INPUT_LIMIT = 4096


class ModelChoice(Protocol):
    """Which model serves a kind of work, and what to use when the gateway says it is not served."""

    def current(self, kind: str) -> str: ...

    async def failed(self, kind: str, model: str) -> str | None: ...


class Gateway:
    """The gateway's OpenAI-format endpoints through the openai SDK on the process's shared httpx client.

    Every call names a kind of work (chat, audio, …); its model is the one `models` has in use. A "model not
    served" answer moves the kind to its next model and the call is made once more with it.
    """

    def __init__(
        self, settings: Settings, http: httpx.AsyncClient, slots: asyncio.Semaphore, models: ModelChoice
    ) -> None:
        self._settings = settings
        self._http = http
        self._slots = slots  # shared with the Midjourney client: a bound on all gateway calls at once
        self._models = models
        self._client = openai.AsyncOpenAI(
            api_key=settings.API_KEY.get_secret_value(),
            base_url=settings.API_BASE_URL,
            http_client=http,
            max_retries=settings.GATEWAY_RETRIES,
            timeout=TRANSPORT_TIMEOUT,
        )
        # Never resend an image request: the first may have been made (and billed) after the connection broke.
        self._images = self._client.with_options(max_retries=0)

    def warm_up(self) -> None:
        """Blocking: the SDK imports its resource modules on first use (a quarter of a second of CPU); pay that
        at start-up, not in the first user's turn with the event loop stalled."""
        _ = (
            self._client.audio.transcriptions,
            self._client.audio.speech,
            self._client.chat.completions,
            self._images.images,
        )

    async def _on_model(self, kind: str, run: Callable[[str], Awaitable[T]], preferred: str | None = None) -> T:
        """Run with the kind's model (or a `preferred` one, a person's pick); when it is not served, once more with
        the model that takes over (the kind's own, for a person's pick)."""
        model = preferred or self._models.current(kind)
        try:
            return await run(model)
        except ModelNotServed:
            if preferred is not None and preferred != self._models.current(kind):
                replacement: str | None = self._models.current(kind)
            else:
                replacement = await self._models.failed(kind, model)
            if replacement is None:
                raise
            return await run(replacement)

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
        self, messages: ChatMessages, into: StreamedReply, model: str | None = None
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
                )

        raw = await self._on_model("chat", open_stream, model)
        async with translated("chat", None) as attempt:
            # Each wait has the deadline, rather than one timeout around the whole loop: a timeout must not
            # span the yields, where the caller's own work runs.
            attempt.request_id = raw.headers.get("x-request-id") or "-"
            stream = raw.parse()
            chunks = stream.__aiter__()
            try:
                while True:
                    async with asyncio.timeout_at(deadline):
                        try:
                            chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                    into.tokens = total_tokens(chunk) or into.tokens
                    choices = getattr(chunk, "choices", None) or []
                    piece = getattr(getattr(choices[0], "delta", None), "content", None) if choices else None
                    if isinstance(piece, str) and piece:
                        into.text = joined(into.text, piece)
                        yield valid_text(whole_characters(into.text))
            finally:
                await stream.close()
            into.text = valid_text(into.text)
            if not into.text.strip():
                raise GatewayBadAnswer("streamed answer without text")

    @contextlib.asynccontextmanager
    async def speak(
        self, messages: ChatMessages, voice: str | None = None
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

    async def draw(self, prompt: str) -> GeneratedImage:
        """A new picture from the image model."""
        return await self._on_model(
            "image",
            lambda model: self._image(
                "draw",
                lambda: self._images.images.with_raw_response.generate(
                    model=model, prompt=prompt, n=1, timeout=TRANSPORT_TIMEOUT, **_b64_option(model)
                ),
            ),
        )

    async def edit(self, pictures: Sequence[Picture], prompt: str) -> GeneratedImage:
        """The image model's change of one or more pictures (several go up as an array)."""
        files = [(picture.filename, picture.data, picture.mime) for picture in pictures]
        return await self._on_model(
            "image",
            lambda model: self._image(
                "edit",
                lambda: self._images.images.with_raw_response.edit(
                    model=model,
                    image=files if len(files) > 1 else files[0],
                    prompt=prompt,
                    timeout=TRANSPORT_TIMEOUT,
                    **_b64_option(model),
                ),
            ),
        )

    async def _image(self, operation: str, send: Callable[[], Awaitable[Any]]) -> GeneratedImage:
        # The answer can hold megabytes of base64: it is parsed and decoded in a worker thread.
        encoded, url, revised = await self._guarded(
            operation, self._settings.IMAGE_TIMEOUT, send, read_image, parse_in_thread=True
        )
        try:
            if encoded is not None:
                data = await asyncio.to_thread(unbase64, encoded, "image")
            else:  # a link instead of base64: fetched with the shared client
                data = await self._download(url or "")
            picture = await asyncio.to_thread(self._picture, data)
        except GatewayError as error:
            log.warning("gateway %s failed: %s", operation, error)
            raise
        return GeneratedImage(picture, revised)

    def _picture(self, data: bytes) -> Picture:
        """Blocking: an answer's picture, checked by its bytes and header like any picture a user sends."""
        if len(data) > self._settings.max_download_bytes:
            raise GatewayAnswerTooLarge("image over MAX_DOWNLOAD_MB")
        mime = sniff_mime(data)
        if mime is None:
            raise GatewayBadAnswer("image answer that is not an image")
        try:
            check_picture(data, self._settings.MAX_IMAGE_PIXELS)
        except PictureTooLarge:
            raise GatewayAnswerTooLarge("image over MAX_IMAGE_PIXELS") from None
        except Refusal:
            raise GatewayBadAnswer("image answer that is not an image") from None
        return Picture(data, mime)

    async def _download(self, url: str) -> bytes:
        """Some gateways answer with a link instead of base64: fetch it with the shared client, capped."""
        try:
            return await download(self._http, url, self._settings.IMAGE_TIMEOUT, self._settings.max_download_bytes)
        except DownloadTooLarge:
            raise GatewayAnswerTooLarge("image download over MAX_DOWNLOAD_MB") from None
        except DownloadFailed:
            raise GatewayUnavailable("image download failed") from None

    async def _guarded(
        self,
        operation: str,
        deadline: float,
        send: Callable[[], Awaitable[Any]],
        read: Callable[[Any], T],
        parse_in_thread: bool = False,
    ) -> T:
        """Send one request (retries included) under an overall deadline and read its answer (in a worker thread
        when it may be megabytes of JSON)."""
        async with translated(operation, deadline) as attempt:
            async with self._slots:  # waiting for a free slot counts against the deadline too
                raw = await send()
            attempt.request_id = raw.headers.get("x-request-id") or "-"
            if parse_in_thread:
                return await asyncio.to_thread(lambda: read(raw.parse()))
            return read(raw.parse())


def _b64_option(model: str) -> dict[str, str]:
    # GPT image models always answer in base64 and reject the parameter; DALL-E needs it asked for.
    return {} if model.startswith("gpt-image") else {"response_format": "b64_json"}
