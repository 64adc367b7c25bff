"""Anthropic's Messages API on the gateway double (POST /v1/messages, which new-api relays): requests checked by
hand against Anthropic's documentation, since it publishes no machine-readable spec, and answered as it answers."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import secrets
import string
import struct
from typing import Any

from aiohttp import web

from ..media import image_size
from .gateway import MESSAGES_PATH, UNSUPPORTED, GatewayCall, GatewayDouble, Rule, estimate_tokens, last_user_text

DEFAULT_PREFIX = "claude: "  # the default answer is this and the last user text, so tests can tell who answered
ANTHROPIC_VERSIONS = ("2023-06-01", "2023-01-01")  # what the API takes in the anthropic-version header
ROLES = ("user", "assistant")
IMAGE_MEDIA_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
MAX_IMAGE_BASE64 = 5 * 2**20  # Anthropic holds its 5 MB image limit against the base64 text, not the decoded bytes
MAX_IMAGE_SIDE = 8000
IMAGE_TOKENS = 1000  # a rough price for a picture in the usage the double reports
# The top-level fields of a request: those the double answers, and those Anthropic documents that it does not.
FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "top_k", "metadata",
    "stop_sequences",
})  # fmt: skip
UNSUPPORTED_FIELDS = frozenset(
    {"tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management"}
)
UNSUPPORTED_BLOCKS = (
    "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use",
    "web_search_tool_result",
)  # fmt: skip
_BLOCK_FIELDS = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "image": frozenset({"type", "source", "cache_control"}),
}
_SYSTEM_ROLE = (
    'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as '
    "an input message role."
)
_NOT_EMPTY = "all messages must have non-empty content except for the optional final assistant message"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sniffed_format(data: bytes) -> str | None:
    """The picture format its first bytes announce."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _decoded_sides(data: bytes, fmt: str) -> tuple[int, int]:
    """Width and height after decoding (a GIF from its header: the double's image tools do not read GIFs)."""
    if fmt == "gif":
        if len(data) < 13:
            raise ValueError("truncated GIF")
        return struct.unpack_from("<HH", data, 6)
    _fmt, width, height = image_size(data)
    return width, height


class AnthropicMessages:
    """POST /v1/messages on a GatewayDouble (which installs it): validated, recorded, scripted with
    gateway.when("/v1/messages", match) like the chat route (reply_text, paced, delay, reply_status...)."""

    def __init__(self, gateway: GatewayDouble) -> None:
        self.gateway = gateway
        gateway.app.router.add_post(MESSAGES_PATH, self._handle)

    # --- validation ----------------------------------------------------------------------------

    async def problems(self, call: GatewayCall) -> list[str]:
        """What Anthropic's API would refuse in this call, and what the double cannot answer (UNSUPPORTED)."""
        problems = self._header_problems(call)
        if call.content_type != "application/json":
            return [*problems, f"content type {call.content_type!r}: the Messages API takes application/json"]
        body = call.json
        if not isinstance(body, dict):
            return [*problems, "the JSON body is not an object"]
        problems += [
            f"{name}: Extra inputs are not permitted" for name in sorted(set(body) - FIELDS - UNSUPPORTED_FIELDS)
        ]
        problems += [f"{UNSUPPORTED} the field {name!r}" for name in sorted(set(body) & UNSUPPORTED_FIELDS)]
        if "model" not in body:
            problems.append("model: Field required")
        elif not isinstance(body["model"], str):
            problems.append("model: Input should be a valid string")
        problems += self._max_tokens_problems(body)
        problems += await self._messages_problems(body)
        problems += self._system_problems(body.get("system"))
        problems += self._option_problems(body)
        return problems

    @staticmethod
    def _header_problems(call: GatewayCall) -> list[str]:
        version = call.headers.get("anthropic-version")
        if version is None:
            return ["anthropic-version: header is required"]
        if version not in ANTHROPIC_VERSIONS:
            return [f"anthropic-version: {version!r} is not a valid version (e.g. {ANTHROPIC_VERSIONS[0]})"]
        return []

    @staticmethod
    def _max_tokens_problems(body: dict[str, Any]) -> list[str]:
        if "max_tokens" not in body:
            return ["max_tokens: Field required"]
        value = body["max_tokens"]
        if not isinstance(value, int) or isinstance(value, bool):
            return ["max_tokens: Input should be a valid integer"]
        if value < 1:
            return ["max_tokens: Input should be greater than or equal to 1"]
        return []

    async def _messages_problems(self, body: dict[str, Any]) -> list[str]:
        if "messages" not in body:
            return ["messages: Field required"]
        messages = body["messages"]
        if not isinstance(messages, list):
            return ["messages: Input should be a valid list"]
        if not messages:
            return ["messages: at least one message is required"]
        problems: list[str] = []
        for index, message in enumerate(messages):
            problems += await self._message_problems(index, message, last=index == len(messages) - 1)
        first = messages[0]
        if isinstance(first, dict) and first.get("role") == "assistant":
            problems.append('messages: first message must use the "user" role')
        # Two turns of one role in a row are allowed: the API joins them into one turn.
        return problems

    async def _message_problems(self, index: int, message: Any, *, last: bool) -> list[str]:
        where = f"messages.{index}"
        if not isinstance(message, dict):
            return [f"{where}: Input should be a valid dictionary"]
        problems = [
            f"{where}.{name}: Extra inputs are not permitted"
            for name in sorted(set(message) - {"role", "content"})
        ]
        role = message.get("role")
        if role == "system":
            problems.append(_SYSTEM_ROLE)
        elif role not in ROLES:
            problems.append(f"{where}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            return [*problems, f"{where}.content: Field required"]
        content = message["content"]
        final_assistant = last and role == "assistant"  # a prefill: may be empty, may not end in whitespace
        if isinstance(content, str):
            if not content:
                if not final_assistant:
                    problems.append(f"{where}: {_NOT_EMPTY}")
            elif not content.strip():
                problems.append("messages: text content blocks must contain non-whitespace text")
            elif final_assistant and content != content.rstrip():
                problems.append("messages: final assistant content cannot end with trailing whitespace")
            return problems
        if not isinstance(content, list):
            return [*problems, f"{where}.content: Input should be a valid string or a list of content blocks"]
        if not content and not final_assistant:
            problems.append(f"{where}: {_NOT_EMPTY}")
        for number, block in enumerate(content):
            problems += await self._block_problems(f"{where}.content.{number}", block)
        if final_assistant and content and isinstance(content[-1], dict) and content[-1].get("type") == "text":
            text = content[-1].get("text")
            if isinstance(text, str) and text.strip() and text != text.rstrip():
                problems.append("messages: final assistant content cannot end with trailing whitespace")
        return problems

    async def _block_problems(self, where: str, block: Any) -> list[str]:
        if not isinstance(block, dict):
            return [f"{where}: Input should be a valid dictionary"]
        kind = block.get("type")
        if kind in UNSUPPORTED_BLOCKS:
            return [f"{UNSUPPORTED} content blocks of type {kind!r} ({where})"]
        if kind not in _BLOCK_FIELDS:
            expected = ", ".join(repr(name) for name in (*_BLOCK_FIELDS, *UNSUPPORTED_BLOCKS))
            return [
                f"{where}: Input tag {kind!r} found using 'type' does not match any of the expected tags: "
                + expected
            ]
        problems = [
            f"{where}.{name}: Extra inputs are not permitted" for name in sorted(set(block) - _BLOCK_FIELDS[kind])
        ]
        if kind == "text":
            return problems + self._text_problems(where, block.get("text"))
        return problems + await self._image_problems(f"{where}.image.source", block.get("source"))

    @staticmethod
    def _text_problems(where: str, text: Any) -> list[str]:
        if not isinstance(text, str):
            return [f"{where}.text: Input should be a valid string"]
        if not text:
            return ["messages: text content blocks must be non-empty"]
        if not text.strip():
            return ["messages: text content blocks must contain non-whitespace text"]
        return []

    async def _image_problems(self, where: str, source: Any) -> list[str]:
        if not isinstance(source, dict):
            return [f"{where}: Input should be a valid dictionary"]
        kind = source.get("type")
        if kind in ("url", "file"):
            # Valid for Anthropic, but Anthropic would fetch the address itself (a Telegram file link carries the
            # bot's token): the bot is to send the bytes.
            return [f"{UNSUPPORTED} image sources of type {kind!r} ({where})"]
        if kind != "base64":
            return [
                f"{where}: Input tag {kind!r} found using 'type' does not match any of the expected tags: "
                "'base64', 'url', 'file'"
            ]
        where += ".base64"
        problems = [
            f"{where}.{name}: Extra inputs are not permitted"
            for name in sorted(set(source) - {"type", "media_type", "data"})
        ]
        media_type, data = source.get("media_type"), source.get("data")
        if media_type not in IMAGE_MEDIA_TYPES:
            problems.append(
                f"{where}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        if not isinstance(data, str):
            return [*problems, f"{where}.data: Input should be a valid string"]
        if len(data) > MAX_IMAGE_BASE64:
            return [
                *problems,
                f"{where}: image exceeds 5 MB maximum: {len(data)} bytes > {MAX_IMAGE_BASE64} bytes",
            ]
        try:
            raw = base64.b64decode(data, validate=True)  # a data: URL, or whitespace, is not base64
        except (binascii.Error, ValueError):
            return [*problems, f"{where}.data: invalid base64 data (a bare base64 string, not a data: URL)"]
        fmt = _sniffed_format(raw)
        if media_type in IMAGE_MEDIA_TYPES and fmt != IMAGE_MEDIA_TYPES[media_type]:
            return [*problems, f"{where}.data: Image does not match the provided media type {media_type}"]
        if fmt is not None and self.gateway.check_uploads:
            try:
                width, height = await asyncio.to_thread(_decoded_sides, raw, fmt)
            except ValueError as exc:
                return [*problems, f"{where}.data: the image could not be decoded ({exc})"]
            if max(width, height) > MAX_IMAGE_SIDE:
                problems.append(
                    f"{where}.data: At least one of the image dimensions exceed max allowed size: "
                    f"{MAX_IMAGE_SIDE} pixels"
                )
        return problems

    @staticmethod
    def _system_problems(system: Any) -> list[str]:
        if system is None or isinstance(system, str):
            return []
        if not isinstance(system, list):
            return ["system: Input should be a valid string or a list of text blocks"]
        problems = []
        for index, block in enumerate(system):
            where = f"system.{index}"
            if not isinstance(block, dict) or block.get("type") != "text":
                problems.append(f"{where}: system blocks must be text blocks ({{'type': 'text', 'text': ...}})")
                continue
            extra = sorted(set(block) - _BLOCK_FIELDS["text"])
            problems += [f"{where}.{name}: Extra inputs are not permitted" for name in extra]
            problems += [
                problem.replace("messages:", "system:")
                for problem in AnthropicMessages._text_problems(where, block.get("text"))
            ]
        return problems

    @staticmethod
    def _option_problems(body: dict[str, Any]) -> list[str]:
        problems = []
        if "stream" in body and not isinstance(body["stream"], bool):
            problems.append("stream: Input should be a valid boolean")
        for name, high in (("temperature", 1.0), ("top_p", 1.0)):
            if name in body and body[name] is not None:
                value = body[name]
                if not _number(value):
                    problems.append(f"{name}: Input should be a valid number")
                elif not 0 <= value <= high:
                    problems.append(f"{name}: Input should be between 0 and {high:g}")
        if body.get("temperature") is not None and body.get("top_p") is not None:
            # The current models (Sonnet 4.5, Haiku 4.5, Opus 4.1 and later) refuse the two together.
            problems.append(
                "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
            )
        top_k = body.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
            problems.append("top_k: Input should be an integer greater than or equal to 0")
        if "metadata" in body and body["metadata"] is not None:
            metadata = body["metadata"]
            if not isinstance(metadata, dict):
                problems.append("metadata: Input should be a valid dictionary")
            else:
                problems += [
                    f"metadata.{name}: Extra inputs are not permitted"
                    for name in sorted(set(metadata) - {"user_id"})
                ]
                if metadata.get("user_id") is not None and not isinstance(metadata["user_id"], str):
                    problems.append("metadata.user_id: Input should be a valid string")
        if "stop_sequences" in body and body["stop_sequences"] is not None:
            sequences = body["stop_sequences"]
            if not isinstance(sequences, list) or not all(isinstance(item, str) for item in sequences):
                problems.append("stop_sequences: Input should be a valid list of strings")
            elif not all(item.strip() for item in sequences):
                problems.append("stop_sequences: each stop sequence must contain non-whitespace")
        return problems

    # --- answers -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        gateway = self.gateway
        call = gateway.call_of(request)
        problems = await self.problems(call)
        if problems:
            return gateway.reject(call, problems)  # 400, in Anthropic's error shape on this route
        body = call.json
        if not gateway.serves(body["model"]):  # new-api's distributor answers before any channel sees the call
            return gateway.not_served(call, body["model"])
        rule, canned = await gateway.scripted(call)
        if canned is not None:
            return canned
        text = rule._text if rule and rule._text is not None else DEFAULT_PREFIX + last_user_text(body)
        text, stop_reason, stop_sequence = self._stopped(body, text)
        message = {
            "id": "msg_01" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(22)),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": self._input_tokens(body),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": estimate_tokens(text),
                "service_tier": "standard",
            },
        }
        if body.get("stream"):
            return await self._stream(request, message, text, rule)
        return web.json_response(message)

    @staticmethod
    def _stopped(body: dict[str, Any], text: str) -> tuple[str, str, str | None]:
        """The text as the model would end it: at the first stop sequence it holds, or at max_tokens."""
        hits = [
            (text.find(sequence), sequence) for sequence in body.get("stop_sequences") or [] if sequence in text
        ]
        if hits:
            position, sequence = min(hits)
            return text[:position], "stop_sequence", sequence
        if estimate_tokens(text) > body["max_tokens"]:
            return text[: body["max_tokens"] * 4], "max_tokens", None
        return text, "end_turn", None

    @staticmethod
    def _input_tokens(body: dict[str, Any]) -> int:
        system = body.get("system") or ""
        texts = [system] if isinstance(system, str) else [str(block.get("text", "")) for block in system]
        tokens = sum(estimate_tokens(text) for text in texts if text)
        for message in body["messages"]:
            content = message["content"]
            tokens += 4  # per-turn overhead
            for block in [content] if isinstance(content, str) else content:
                if isinstance(block, str):
                    tokens += estimate_tokens(block)
                elif block.get("type") == "text":
                    tokens += estimate_tokens(str(block.get("text", "")))
                else:
                    tokens += IMAGE_TOKENS
        return tokens

    async def _stream(
        self, request: web.Request, message: dict[str, Any], text: str, rule: Rule | None
    ) -> web.StreamResponse:
        """Server-sent events in the order Anthropic sends them, a ping after the content block opens."""
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        usage = message["usage"]
        opening = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        opening["usage"] = {**usage, "output_tokens": 1}  # the API counts the first token at the start
        await send("message_start", {"type": "message_start", "message": opening})
        await send(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        await send("ping", {"type": "ping"})
        # Several pieces, so clients really have to join them; a paced rule sends its pieces slowly, like a model.
        pieces, gap = (rule._pace if rule else None) or (4, 0.0)
        size = max(1, math.ceil(len(text) / pieces))
        for start in range(0, len(text), size):
            if gap and start:
                await asyncio.sleep(gap)
            delta = {"type": "text_delta", "text": text[start : start + size]}
            await send("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        await send("content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
        await send(
            "message_delta",
            {"type": "message_delta", "delta": stop, "usage": {"output_tokens": usage["output_tokens"]}},
        )
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response
