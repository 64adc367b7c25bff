"""Midjourney reads English: a prompt in another script (Chinese, Cyrillic…) is first rewritten into an English
Midjourney prompt by the chat model, with structured output; when that fails, the original goes as it is."""

from __future__ import annotations

import logging

from bot.clients.gateway import Gateway
from bot.clients.gateway_errors import GatewayError

log = logging.getLogger(__name__)

_INSTRUCTIONS = (
    "Rewrite the user's picture description as one English Midjourney prompt: concrete nouns, style and light, "
    "comma-separated phrases, nothing else. Keep every Midjourney parameter (--ar 16:9, --v 6, --no …) exactly "
    "as written."
)
_SCHEMA = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "description": "The English Midjourney prompt."}},
    "required": ["prompt"],
    "additionalProperties": False,
}
_LONGEST = 4000


class PromptWriter:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def english(self, prompt: str) -> str | None:
        """The prompt rewritten in English, or None: it is English already (plain ASCII), or the rewrite failed."""
        if prompt.isascii():
            return None
        try:
            answer = await self._gateway.structured(
                [{"role": "system", "content": _INSTRUCTIONS}, {"role": "user", "content": prompt}],
                "midjourney_prompt",
                _SCHEMA,
            )
        except GatewayError as error:  # logged by the client; the original prompt goes
            log.info("the prompt was not rewritten: %s", type(error).__name__)
            return None
        rewritten = answer.get("prompt")
        if not isinstance(rewritten, str) or not rewritten.strip():
            return None
        return " ".join(rewritten.split())[:_LONGEST]
