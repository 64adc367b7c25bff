"""The gateway's calls that look things up or shape them: web search (Responses API), embeddings and
structured output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.clients.gateway_base import ChatMessages, GatewayBase
from bot.clients.gateway_errors import GatewayBadAnswer
from bot.clients.gateway_results import SearchAnswer, first_message, read_search
from bot.clients.http import TRANSPORT_TIMEOUT


class KnowledgeCalls(GatewayBase):
    async def search(self, query: str) -> SearchAnswer:
        """A web search through the Responses API and its built-in web_search tool: the answer and its sources."""
        return await self._on_model(
            "search",
            lambda model: self._guarded(
                "search",
                self._settings.CHAT_TIMEOUT,
                lambda: self._client.responses.with_raw_response.create(
                    model=model, input=query, tools=[{"type": "web_search"}], timeout=TRANSPORT_TIMEOUT
                ),
                read_search,
            ),
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """The embedding model's vectors for the texts, in their order."""

        def read(answer: Any) -> list[list[float]]:
            data = sorted(getattr(answer, "data", None) or [], key=lambda item: getattr(item, "index", 0))
            vectors = [list(getattr(item, "embedding", None) or []) for item in data]
            if len(vectors) != len(texts) or not all(vectors):
                raise GatewayBadAnswer("embeddings missing")
            return vectors

        return await self._on_model(
            "embedding",
            lambda model: self._guarded(
                "embed",
                self._settings.CHAT_TIMEOUT,
                lambda: self._client.embeddings.with_raw_response.create(
                    model=model, input=list(texts), timeout=TRANSPORT_TIMEOUT
                ),
                read,
            ),
        )

    async def structured(self, messages: ChatMessages, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The chat model's answer as a JSON object of `schema` (structured output; audio models cannot)."""

        def read(completion: Any) -> dict[str, Any]:
            text = getattr(first_message(completion), "content", None)
            try:
                value = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                value = None
            if not isinstance(value, dict):
                raise GatewayBadAnswer("structured answer that is no object")
            return value

        response_format = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        return await self._on_model(
            "chat",
            lambda model: self._guarded(
                "structured",
                self._settings.CHAT_TIMEOUT,
                lambda: self._client.chat.completions.with_raw_response.create(
                    model=model,
                    messages=list(messages),  # type: ignore[arg-type]
                    response_format=response_format,  # type: ignore[arg-type]
                    timeout=TRANSPORT_TIMEOUT,
                ),
                read,
            ),
        )
