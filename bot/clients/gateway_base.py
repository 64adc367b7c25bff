"""What every call to the gateway's OpenAI-format endpoints shares: the SDK client on the process's one httpx
client, the bound on calls at once, the model in use for a kind of work and the move to the next one, and the
deadline and error words around each request.

Importing the openai SDK and loading what a conversation's calls use takes half a second: none of it is on the
way to the first getUpdates. `prepare` pays for it in a worker thread once the bot serves, and a call made before
that is done waits for it (see `_on_model`).
"""

from __future__ import annotations

import asyncio
import threading
import typing
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx
import pydantic

from bot.clients.gateway_errors import ModelNotServed, translated
from bot.clients.http import TRANSPORT_TIMEOUT
from bot.config import Settings

if TYPE_CHECKING:
    import openai

T = TypeVar("T")

ChatMessages = Sequence[dict[str, Any]]


class ModelChoice(Protocol):
    """Which model serves a kind of work, and what to use when the gateway says it is not served."""

    async def settled(self) -> None: ...

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
        self._sdk_clients: tuple[openai.AsyncOpenAI, openai.AsyncOpenAI] | None = None
        self._preparing = threading.Lock()  # one thread builds the clients; any other waits for it
        self._preparation: asyncio.Future[None] | None = None

    def prepare(self) -> None:
        """Blocking, run in a worker thread (any number of times, from any thread): import the SDK, build its
        clients, and load what a conversation's calls use that the SDK would otherwise load on first use, with the
        event loop stalled: its resource modules, and the pydantic models of the answers (it defers those)."""
        with self._preparing:
            if self._sdk_clients is not None:
                return
            import openai
            from openai.types.audio import Transcription
            from openai.types.chat import ChatCompletion, ChatCompletionChunk

            client = openai.AsyncOpenAI(
                api_key=self._settings.API_KEY.get_secret_value(),
                base_url=self._settings.API_BASE_URL,
                http_client=self._http,
                max_retries=self._settings.GATEWAY_RETRIES,
                timeout=TRANSPORT_TIMEOUT,
            )
            # Never resend an image request: the first may have been made (and billed) after the connection broke.
            images = client.with_options(max_retries=0)
            _ = (client.audio.transcriptions, client.audio.speech, client.chat.completions)
            _build_answer_models(ChatCompletionChunk, ChatCompletion, Transcription)
            self._sdk_clients = (client, images)

    def prepare_the_rest(self) -> None:
        """Blocking, for a worker thread once `ready`: the same for the calls no turn waits on `ready` for (web
        search, embeddings, pictures), a fifth of a second the first turns after start-up do without."""
        from openai.types import CreateEmbeddingResponse, ImagesResponse
        from openai.types.responses import Response

        client, images = self._prepared()
        _ = (client.responses, client.embeddings, images.images)
        _build_answer_models(Response, CreateEmbeddingResponse, ImagesResponse)

    async def ready(self) -> None:
        """Until the SDK is prepared: the first to ask (the start-up's warm-up, normally) runs `prepare` in a
        worker thread, and whoever asks meanwhile waits for that same run, not holding a thread of their own."""
        if self._sdk_clients is not None:
            return
        if self._preparation is None:
            self._preparation = asyncio.ensure_future(asyncio.to_thread(self.prepare))
        await asyncio.shield(self._preparation)  # a turn given up on does not stop it for the others

    @property
    def _client(self) -> openai.AsyncOpenAI:
        return self._prepared()[0]

    @property
    def _images(self) -> openai.AsyncOpenAI:
        return self._prepared()[1]

    def _prepared(self) -> tuple[openai.AsyncOpenAI, openai.AsyncOpenAI]:
        # Every call awaits `ready` first (in `_on_model`); preparing here, blocking, is only a safety net.
        if self._sdk_clients is None:
            self.prepare()
        assert self._sdk_clients is not None
        return self._sdk_clients

    async def _on_model(self, kind: str, run: Callable[[str], Awaitable[T]], preferred: str | None = None) -> T:
        """Run with the kind's model (or a `preferred` one, a person's pick); when it is not served, once more with
        the model that takes over (the kind's own, for a person's pick)."""
        await self.ready()
        await self._models.settled()
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


def _build_answer_models(*answers: type[pydantic.BaseModel]) -> None:
    """Build the models of these answers and of every model they hold: pydantic work the SDK defers to each
    model's first answer, a few milliseconds at a time on the event loop."""
    pending: list[Any] = list(reversed(answers))  # worked from the end: in the order given
    seen: set[type] = set()
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            if annotation not in seen:
                seen.add(annotation)
                annotation.model_rebuild(raise_errors=False)  # one it cannot build is left for its first use
                pending += [field.annotation for field in annotation.model_fields.values()]
        else:  # list[X], X | None, Literal[...], Annotated[X, ...]: what they are made of
            pending += typing.get_args(annotation)


def tools_option(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The tools offered to a chat model, as request options. Offered only when there are some: an empty list is
    refused by the API."""
    return {"tools": list(tools), "tool_choice": "auto"} if tools else {}
