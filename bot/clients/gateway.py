"""OpenAI-format calls to the gateway (transcribe, chat, speak): typed in, typed out, errors in words."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import openai

from bot.clients.gateway_errors import (
    GatewayAnswerTooLarge,
    GatewayBadAnswer,
    GatewayError,
    GatewayRefused,
    GatewayTimeout,
    GatewayUnavailable,
    status_error,
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
from bot.clients.http import TRANSPORT_TIMEOUT, DownloadFailed, DownloadTooLarge, ResponseTooLarge, download
from bot.config import Settings
from bot.core.errors import Refusal
from bot.media.images import Picture, PictureTooLarge, check_picture, sniff_mime

log = logging.getLogger(__name__)

T = TypeVar("T")


ChatMessages = Sequence[dict[str, Any]]


class Gateway:
    """The gateway's OpenAI-format endpoints through the openai SDK on the process's shared httpx client."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, slots: asyncio.Semaphore) -> None:
        self._settings = settings
        self._http = http
        self._slots = slots  # shared with the Midjourney client: a bound on all gateway calls at once
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
        _ = (self._client.audio.transcriptions, self._client.chat.completions, self._images.images)

    async def transcribe(self, audio: bytes, filename: str, content_type: str) -> Transcript:
        """Speech to text; the file goes up as it came (Whisper reads ogg/opus, mp3, m4a, mp4 itself)."""

        def read(result: Any) -> Transcript:
            text = getattr(result, "text", None)
            if not isinstance(text, str):
                raise GatewayBadAnswer("transcription without text")
            return Transcript(text=text.strip())

        return await self._guarded(
            "transcribe",
            self._settings.VOICE_TIMEOUT,
            lambda: self._client.audio.transcriptions.with_raw_response.create(
                model=self._settings.TRANSCRIBE_MODEL,
                file=(filename, audio, content_type),
                timeout=TRANSPORT_TIMEOUT,
            ),
            read,
        )

    async def chat(self, messages: ChatMessages) -> ChatReply:
        """A text answer from the chat model."""
        return await self._complete("chat", self._settings.CHAT_MODEL, messages)

    async def look(self, messages: ChatMessages) -> ChatReply:
        """A text answer from the vision model; the last message carries the image(s) as data URLs."""
        return await self._complete("look", self._settings.VISION_MODEL, messages)

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

    async def chat_stream(self, messages: ChatMessages, into: StreamedReply) -> AsyncIterator[str]:
        """The chat model's answer as it is written: yields the text so far after each piece; `into` holds the
        whole text and the tokens once the iteration ends."""
        deadline = asyncio.get_running_loop().time() + self._settings.CHAT_TIMEOUT
        async with self._translated("chat", None) as attempt:
            # Each wait has the deadline, rather than one timeout around the whole loop: a timeout must not
            # span the yields, where the caller's own work runs.
            async with asyncio.timeout_at(deadline), self._slots:
                raw = await self._client.chat.completions.with_raw_response.create(
                    model=self._settings.CHAT_MODEL,
                    messages=list(messages),  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=TRANSPORT_TIMEOUT,
                )
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
        manager = self._client.chat.completions.with_streaming_response.create(
            model=self._settings.AUDIO_MODEL,
            modalities=["text", "audio"],
            audio={"voice": voice or self._settings.VOICE, "format": "wav"},  # type: ignore[typeddict-item]
            messages=list(messages),  # type: ignore[arg-type]
            timeout=TRANSPORT_TIMEOUT,
        )
        async with self._translated("speak", self._settings.VOICE_TIMEOUT) as attempt:
            async with self._slots:
                response = await manager.__aenter__()
            attempt.request_id = response.headers.get("x-request-id") or "-"

        async def read_answer() -> SpokenReply:
            async with self._translated("speak", self._settings.VOICE_TIMEOUT, attempt.request_id):
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

    async def draw(self, prompt: str) -> GeneratedImage:
        """A new picture from IMAGE_MODEL."""
        return await self._image(
            "draw",
            lambda: self._images.images.with_raw_response.generate(
                model=self._settings.IMAGE_MODEL,
                prompt=prompt,
                n=1,
                timeout=TRANSPORT_TIMEOUT,
                **self._b64_option(),
            ),
        )

    async def edit(self, pictures: Sequence[Picture], prompt: str) -> GeneratedImage:
        """IMAGE_MODEL's change of one or more pictures (several go up as an array)."""
        files = [(picture.filename, picture.data, picture.mime) for picture in pictures]
        return await self._image(
            "edit",
            lambda: self._images.images.with_raw_response.edit(
                model=self._settings.IMAGE_MODEL,
                image=files if len(files) > 1 else files[0],
                prompt=prompt,
                timeout=TRANSPORT_TIMEOUT,
                **self._b64_option(),
            ),
        )

    def _b64_option(self) -> dict[str, str]:
        # GPT image models always answer in base64 and reject the parameter; DALL-E needs it asked for.
        return {} if self._settings.IMAGE_MODEL.startswith("gpt-image") else {"response_format": "b64_json"}

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
        async with self._translated(operation, deadline) as attempt:
            async with self._slots:  # waiting for a free slot counts against the deadline too
                raw = await send()
            attempt.request_id = raw.headers.get("x-request-id") or "-"
            if parse_in_thread:
                return await asyncio.to_thread(lambda: read(raw.parse()))
            return read(raw.parse())

    @contextlib.asynccontextmanager
    async def _translated(
        self, operation: str, deadline: float | None, request_id: str = "-"
    ) -> AsyncIterator[_Attempt]:
        """The block under a deadline (None: the block keeps its own), its failures turned into GatewayErrors.

        Each failure is logged once here, with the status and the gateway's request id only: upstream bodies can
        echo prompts or keys and never go to the log or the user.
        """
        attempt = _Attempt(request_id)
        try:
            async with asyncio.timeout(deadline):
                yield attempt
        except GatewayError as error:
            log.warning("gateway %s failed: %s request_id=%s", operation, error, attempt.request_id)
            raise
        except (TimeoutError, openai.APITimeoutError):
            log.warning("gateway %s timed out", operation)
            raise GatewayTimeout(operation) from None
        except openai.APIStatusError as error:
            log.warning(
                "gateway %s failed: status=%s request_id=%s", operation, error.status_code, error.request_id or "-"
            )
            raise status_error(operation, error) from None
        except (openai.APIConnectionError, httpx.TransportError) as error:
            if isinstance(error, ResponseTooLarge) or isinstance(error.__cause__, ResponseTooLarge):
                log.warning("gateway %s failed: the answer was larger than the process reads", operation)
                raise GatewayAnswerTooLarge(operation) from None
            log.warning("gateway %s failed: cannot connect", operation)
            raise GatewayUnavailable(operation) from None
        except (openai.OpenAIError, httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError) as error:
            # Malformed JSON, or a shape the SDK could not read.
            log.warning(
                "gateway %s failed: unreadable answer (%s) request_id=%s",
                operation,
                type(error).__name__,
                attempt.request_id,
            )
            raise GatewayBadAnswer(operation) from None


@dataclass(slots=True)
class _Attempt:
    """What a call has learned so far, for its log line."""

    request_id: str = "-"
