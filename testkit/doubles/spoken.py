"""Spoken answers streamed the way the API streams them (`stream: true`, `audio.format: "pcm16"`): after the
opening delta, `delta.audio` pieces carry the answer's id, pieces of its transcript and base64 pieces of its PCM
(16-bit mono, 24 kHz), interleaved; the last names the audio's expiry. And the ways a gateway that does not
stream audio answers instead."""

from __future__ import annotations

import base64
import math
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..media import make_pcm16
from .gateway import AUDIO_RATE, estimate_tokens, openai_error, split_evenly

if TYPE_CHECKING:
    from .gateway import GatewayCall, GatewayDouble, Rule

# How a gateway that does not stream audio answers a streamed audio request.
NOT_STREAMED = ("refuses", "words only")
# Pieces of a streamed answer unless the rule paces it otherwise: several, so a client must join them.
AUDIO_PIECES = 8


async def stream_spoken_answer(
    gateway: GatewayDouble, request: web.Request, call: GatewayCall, rule: Rule | None, seconds: float, said: str
) -> web.StreamResponse:
    """The spoken answer (`seconds` of a tone saying `said`) as a stream of chunks, each checked against the
    spec; paced by the rule (pieces, gap) when it asks."""
    how = rule._audio_streaming if rule is not None else "streams"
    if how == "refuses":
        body = openai_error(400, "Audio output with stream=true is not supported for this model")
        return web.json_response(body, status=400)
    pieces, gap = (rule._pace if rule else None) or (AUDIO_PIECES, 0.0)
    pcm = make_pcm16(seconds, AUDIO_RATE) if how == "streams" else b""
    audio_id = "audio_" + secrets.token_hex(12)
    words = split_evenly(said, pieces)
    sounds = _split_bytes(pcm, pieces)
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None, "refusal": None}]
    for number in range(max(len(words), len(sounds))):
        audio: dict[str, Any] = {"id": audio_id} if number == 0 else {}
        if number < len(words):
            audio["transcript"] = words[number]
        deltas.append({"audio": audio})
        if number < len(sounds):
            deltas.append({"audio": {"data": base64.b64encode(sounds[number]).decode("ascii")}})
    deltas.append({"audio": {"id": audio_id, "expires_at": int(time.time()) + 3600}})
    usage = gateway.chat_usage(call.json, estimate_tokens(said), math.ceil(seconds * 10))
    # The gap comes between audio pieces: two deltas (words, sound) per piece.
    return await gateway.stream_chat(request, call, gateway.chat_head(call.json), deltas, "stop", usage, gap / 2)


def _split_bytes(data: bytes, pieces: int) -> list[bytes]:
    """The bytes in `pieces` runs of about the same length; the cuts fall mid-sample on purpose (an odd size), as
    nothing in the API promises whole samples per piece."""
    if not data:
        return []
    size = max(1, math.ceil(len(data) / pieces))
    if size % 2 == 0:
        size += 1
    return [data[start : start + size] for start in range(0, len(data), size)]
