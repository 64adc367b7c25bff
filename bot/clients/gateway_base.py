"""What every call to the gateway's OpenAI-format endpoints shares: the SDK client on the process's one httpx
client, the bound on calls at once, the model in use for a kind of work and the move to the next one, and the
deadline and error words around each request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import httpx
import openai

from bot.clients.gateway_errors import ModelNotServed, translated
from bot.clients.http import TRANSPORT_TIMEOUT
from bot.config import Settings

T = TypeVar("T")

ChatMessages = Sequence[dict[str, Any]]


class ModelChoice(Protocol):
    """Which model serves a kind of work, and what to use when the gateway says it is not served."""

    def current(self, kind: str) -> str: ...

    async def failed(self, kind: str, model: str) -> str | None: ...


class GatewayBase:
    """The shared part of the gateway's calls; the calls themselves live in the classes built on it."""

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
