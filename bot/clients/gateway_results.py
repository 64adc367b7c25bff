"""What the gateway answers, typed (transcripts, text and spoken replies, streamed text, generated pictures), and
how those are read out of the SDK's objects, whose shape a gateway may get wrong."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from bot.clients.gateway_errors import GatewayBadAnswer, GatewayRefused
from bot.media.images import Picture

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str


@dataclass(frozen=True, slots=True)
class ChatReply:
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function the model asked to run, with its arguments as the model wrote them (JSON text, unchecked: the
    gateway drops `strict`)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class SpokenReply:
    transcript: str
    wav: bytes  # empty when the model asked for tools instead of speaking
    tokens: int
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(slots=True)
class StreamedReply:
    """Filled in while an answer streams: its text, or the tools the model asked for."""

    text: str = ""
    tokens: int = 0
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Citation:
    url: str
    title: str


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    text: str
    citations: tuple[Citation, ...]
    tokens: int


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    picture: Picture
    revised_prompt: str | None


def read_speech(completion: Any) -> SpokenReply:
    message = first_message(completion)
    calls = read_tool_calls(message)
    if calls:
        return SpokenReply(transcript="", wav=b"", tokens=total_tokens(completion), tool_calls=calls)
    audio = getattr(message, "audio", None)
    data = getattr(audio, "data", None)
    if not isinstance(data, str) or not data:
        if getattr(message, "refusal", None):
            raise GatewayRefused("model refused")
        raise GatewayBadAnswer("audio answer without audio data")
    transcript = getattr(audio, "transcript", None) or getattr(message, "content", None) or ""
    return SpokenReply(
        transcript=str(transcript).strip(), wav=unbase64(data, "audio"), tokens=total_tokens(completion)
    )


def read_image(result: Any) -> tuple[str | None, str | None, str | None]:
    """The first image of an images answer: (its base64, or None and its link), and the revised prompt."""
    data = getattr(result, "data", None)
    if not data:
        raise GatewayBadAnswer("image answer without images")
    item = data[0]
    revised = getattr(item, "revised_prompt", None)
    revised = revised.strip() if isinstance(revised, str) and revised.strip() else None
    encoded, url = getattr(item, "b64_json", None), getattr(item, "url", None)
    if isinstance(encoded, str) and encoded:
        return encoded, None, revised
    if url:
        return None, str(url), revised
    raise GatewayBadAnswer("image answer without data")


def joined(text: str, piece: str) -> str:
    """A streamed piece added to the text. An emoji (a UTF-16 surrogate pair) may arrive in two pieces, each
    half escaped on its own in the JSON: the halves are joined back into the one character."""
    joined = text + piece
    if _SURROGATE.search(piece) is None:
        return joined
    return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def whole_characters(text: str) -> str:
    """The text without a trailing half character still waiting for its other half."""
    return text[:-1] if text and "\ud800" <= text[-1] <= "\udbff" else text


def valid_text(text: str) -> str:
    """A half character that never met its other half becomes U+FFFD: Telegram takes only valid UTF-8."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def unbase64(data: str, what: str) -> bytes:
    try:
        # strict_mode checks the alphabet in C; b64decode(validate=True) runs a regex over the whole payload first.
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise GatewayBadAnswer(f"{what} answer with broken base64") from None


def first_message(completion: Any) -> Any:
    choices = getattr(completion, "choices", None)
    if not choices:
        raise GatewayBadAnswer("answer without choices")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise GatewayBadAnswer("answer without message")
    return message


def field(holder: Any, name: str) -> Any:
    """A field of an answer read as the SDK's objects or as plain JSON (streams the bot parses itself)."""
    if isinstance(holder, dict):
        return holder.get(name)
    return getattr(holder, name, None)


def total_tokens(completion: Any) -> int:
    total = field(field(completion, "usage"), "total_tokens")
    return total if isinstance(total, int) and total >= 0 else 0


def read_tool_calls(message: Any) -> tuple[ToolCall, ...]:
    """The function calls of a whole (not streamed) assistant message."""
    calls = []
    for call in getattr(message, "tool_calls", None) or ():
        function = getattr(call, "function", None)
        name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
        if isinstance(name, str) and name:
            calls.append(ToolCall(str(getattr(call, "id", "") or ""), name, str(arguments or "")))
    return tuple(calls)


def gather_tool_calls(pieces: dict[int, list[str]], delta: Any) -> None:
    """Add a streamed chunk's tool-call pieces: [id, name, arguments…] by the call's index."""
    for call in field(delta, "tool_calls") or ():
        index = field(call, "index") or 0
        entry = pieces.setdefault(index, ["", ""])
        if field(call, "id"):
            entry[0] = str(field(call, "id"))
        function = field(call, "function")
        if field(function, "name"):
            entry[1] = str(field(function, "name"))
        if field(function, "arguments"):
            entry.append(str(field(function, "arguments")))


def streamed_tool_calls(pieces: dict[int, list[str]]) -> list[ToolCall]:
    return [
        ToolCall(entry[0], entry[1], "".join(entry[2:])) for _index, entry in sorted(pieces.items()) if entry[1]
    ]


def read_search(response: Any) -> SearchAnswer:
    """The text of a Responses API answer and the sources its url_citation annotations name, each once."""
    texts: list[str] = []
    citations: dict[str, Citation] = {}
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", "") != "message":
            continue
        for part in getattr(item, "content", None) or ():
            if getattr(part, "type", "") != "output_text":
                continue
            texts.append(str(getattr(part, "text", "") or ""))
            for note in getattr(part, "annotations", None) or ():
                url = getattr(note, "url", None)
                if getattr(note, "type", "") == "url_citation" and isinstance(url, str) and url.startswith("http"):
                    citations.setdefault(url, Citation(url, str(getattr(note, "title", "") or url)))
    text = "".join(texts).strip()
    if not text:
        raise GatewayBadAnswer("search answer without text")
    usage = getattr(response, "usage", None)
    tokens = getattr(usage, "total_tokens", 0)
    return SearchAnswer(text, tuple(citations.values()), tokens if isinstance(tokens, int) else 0)
