"""Claude models through the gateway's Anthropic-format endpoint, `{MJ_BASE_URL}/v1/messages`, with the official
anthropic SDK on the process's one HTTP client.

The SDK's 0.x line is used: from 1.0 on it moved to the httpx2 fork (as openai 3 did), and could then no longer
share the process's httpx client. It takes half a second to import, so it is imported in a worker thread, the
first time a Claude model is needed (or in the background at start-up, when one is on offer).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import httpx

from bot.clients.gateway import ChatMessages
from bot.clients.gateway_errors import (
    GatewayBadAnswer,
    GatewayBusy,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
    ModelNotServed,
)
from bot.clients.gateway_results import StreamedReply, joined, valid_text, whole_characters
from bot.clients.http import TRANSPORT_TIMEOUT
from bot.config import Settings

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
# Long enough for a chat answer that fills a few Telegram messages.
MAX_TOKENS = 2048


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def anthropic_messages(messages: ChatMessages) -> tuple[str, list[dict[str, Any]]]:
    """Chat-completions messages in Anthropic's shape: the system prompt on its own, and the turns alternating
    user and assistant (two in a row of one role are joined), starting with the user."""
    system = "\n\n".join(_text_of(message) for message in messages if message.get("role") == "system")
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role not in ("user", "assistant"):
            continue
        text = _text_of(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    while turns and turns[0]["role"] != "user":
        turns.pop(0)
    return system, turns


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # parts: only the text travels (Claude is offered for text answers)
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


class Claude:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, slots: asyncio.Semaphore) -> None:
        self._settings = settings
        self._http = http
        self._slots = slots  # the bound on all gateway calls at once, shared with the other clients
        self._sdk: ModuleType | None = None
        self._client: Any = None

    async def warm_up(self) -> None:
        await self._ready()

    async def stream(self, model: str, messages: ChatMessages, into: StreamedReply) -> AsyncIterator[str]:
        """Claude's answer as it is written: the text so far after each piece; `into` holds the whole of it and
        its tokens once the iteration ends."""
        client = await self._ready()
        sdk = self._sdk
        assert sdk is not None
        system, turns = anthropic_messages(messages)
        deadline = asyncio.get_running_loop().time() + self._settings.CHAT_TIMEOUT
        try:
            async with asyncio.timeout_at(deadline), self._slots:
                stream = await client.messages.create(
                    model=model, max_tokens=MAX_TOKENS, system=system, messages=turns, stream=True
                )
            async for event in _with_deadline(stream, deadline):
                kind = getattr(event, "type", "")
                if kind == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
                    into.text = joined(into.text, event.delta.text or "")
                    yield valid_text(whole_characters(into.text))
                elif kind == "message_start":
                    into.tokens = getattr(event.message.usage, "input_tokens", 0) or 0
                elif kind == "message_delta":
                    into.tokens += getattr(event.usage, "output_tokens", 0) or 0
        except GatewayError:
            raise
        except (TimeoutError, sdk.APITimeoutError):
            log.warning("claude %s timed out", model)
            raise GatewayTimeout("claude") from None
        except sdk.APIStatusError as error:
            log.warning("claude %s failed: status=%s", model, error.status_code)
            raise _status_error(error) from None
        except (sdk.APIConnectionError, httpx.TransportError):
            log.warning("claude %s failed: cannot connect", model)
            raise GatewayUnavailable("claude") from None
        except (sdk.AnthropicError, httpx.HTTPError, ValueError, TypeError, AttributeError) as error:
            log.warning("claude %s failed: unreadable answer (%s)", model, type(error).__name__)
            raise GatewayBadAnswer("claude") from None
        into.text = valid_text(into.text)
        if not into.text.strip():
            raise GatewayBadAnswer("claude answered without text")

    async def _ready(self) -> Any:
        if self._client is None:
            sdk = await asyncio.to_thread(importlib.import_module, "anthropic")
            self._sdk = sdk
            self._client = sdk.AsyncAnthropic(
                api_key=self._settings.API_KEY.get_secret_value(),
                base_url=self._settings.MJ_BASE_URL,
                http_client=self._http,
                max_retries=self._settings.GATEWAY_RETRIES,
                timeout=TRANSPORT_TIMEOUT,
                default_headers={"anthropic-version": ANTHROPIC_VERSION},
            )
        return self._client


async def _with_deadline(stream: Any, deadline: float) -> AsyncIterator[Any]:
    """The stream's events, each awaited under the deadline (never spanning the consumer's own work)."""
    events = stream.__aiter__()
    try:
        while True:
            async with asyncio.timeout_at(deadline):
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    return
            yield event
    finally:
        await stream.close()


def _status_error(error: Any) -> GatewayError:
    status = error.status_code
    said = f"{getattr(error, 'body', '')} {getattr(error, 'message', '')}".lower()
    if status in (404, 503) and (
        "model_not_found" in said or "无可用渠道" in said or "no available channel" in said
    ):
        return ModelNotServed(f"status {status}")
    if status == 429:
        return GatewayBusy("rate limited")
    if status >= 500:
        return GatewayUnavailable(f"status {status}")
    return GatewayError(f"status {status}")
