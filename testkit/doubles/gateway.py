"""A local double of the AI gateway (an OpenAI-compatible new-api deployment): validates, records and scripts calls."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import secrets
import socket
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import CIMultiDict

from ..media import decode_with_ffmpeg, image_size, make_jpeg, make_pcm16, make_png, make_wav, make_webp
from .meaning import bag_of_words_vector
from .openai_spec import OpenAISpec

API_PREFIX = "/v1"
DEFAULT_TRANSCRIPT = "hello there"
DEFAULT_AUDIO_SECONDS = 2.0
AUDIO_RATE = 24000  # chat audio and /audio/speech answer PCM16 mono at 24 kHz, like the real API
# The built-in voices the spec's description of /audio/speech names. Its schema takes any string (and custom voice
# objects), but the API refuses a name that is none of these.
SPEECH_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin",
    "cedar",
)  # fmt: skip
# Length of an embedding when `dimensions` is not given.
EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}
DEFAULT_EMBEDDING_DIMENSIONS = 1536  # text-embedding-3-small and text-embedding-ada-002
# The API tells an upload's format by its file name. The spec's description of the file field lists
# these without "oga", but the service's own error message lists "oga" too (Telegram's voice files).
TRANSCRIBABLE_EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
UNSUPPORTED = (
    "unsupported by the gateway double:"  # prefix of violations that are the double's limits, not the API's
)

Predicate = Callable[["GatewayCall"], bool]

# Files behind links (a picture an answer links to, the hops of a redirect chain) live under this path, need no key,
# and are not API calls: they are recorded as FileRequests, not GatewayCalls.
FILES_PREFIX = "/files/"
# The dimensions a large picture's header declares: a plausible photo, well inside the bot's pixel limit, so that
# only its size in bytes can be held against it.
LARGE_PICTURE_SIDES = (4000, 3000)
_FILLER = bytes(2**20)  # what follows a large picture's header: one megabyte of zeros, written again and again

# What the double's gateway serves unless a test says otherwise: the bot's default models, their successors, and
# the models tests start the bot with. reset_rules() brings the catalog back to this after each test.
DEFAULT_CATALOG = (
    "gpt-4o-mini", "gpt-5-mini", "gpt-4o", "gpt-5", "gpt-4o-audio-preview", "gpt-audio", "whisper-1",
    "gpt-4o-mini-transcribe", "gpt-image-1", "gpt-image-1-mini", "dall-e-3", "dall-e-2", "gpt-4o-mini-tts",
    "tts-1", "text-embedding-3-small", "claude-sonnet-4-5", "claude-haiku-4-5",
)  # fmt: skip

# new-api picks a channel by the model a call names before anything else looks at the call; where the body names
# none it assumes these (its distributor's defaults). Other routes without a model are not checked.
NEW_API_DEFAULT_MODELS = {
    "/images/generations": "dall-e",
    "/audio/speech": "tts-1",
    "/audio/transcriptions": "whisper-1",
}
NEW_API_GROUP = "default"  # the key's group, named in new-api's "no channel" message
MODEL_NOT_FOUND = "model_not_found"

# The Anthropic Messages route: it keeps its whole path (it is not an OpenAI route under /v1), so tests name it so.
MESSAGES_PATH = "/v1/messages"
RESPONSES_PATH = "/responses"  # the Responses API (web search), an OpenAI route served by responses.py
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}  # fmt: skip


@dataclass
class UploadedPart:
    """One file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class GatewayCall:
    """One request the double received, and how it was answered."""

    path: str  # without the /v1 prefix for API routes: "/chat/completions"
    method: str
    request_id: str
    headers: CIMultiDict[str]
    at: float  # time.monotonic() on arrival
    content_type: str = ""
    query: dict[str, str] = field(default_factory=dict)
    json: Any = None
    fields: dict[str, str | list[str]] = field(default_factory=dict)  # a repeated name maps to a list
    files: dict[str, list[UploadedPart]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    status: int | None = None  # None until answered, and for good when the client went away first
    disconnected: bool = False
    ended_at: float | None = None  # time.monotonic() once a streamed answer's last byte was written

    @property
    def model(self) -> str | None:
        """The model the body names (the JSON `model`, or the multipart field), None when it names none."""
        value = self.json.get("model") if isinstance(self.json, dict) else self.fields.get("model")
        return value if isinstance(value, str) else None

    def uploads(self, name: str) -> list[UploadedPart]:
        """Files sent as `name` or `name[]`, in order."""
        return self.files.get(name, []) + self.files.get(f"{name}[]", [])

    def form(self) -> dict[str, Any]:
        """Fields and files together (files as bytes), as OpenAISpec.validate_request takes a multipart body."""
        form: dict[str, Any] = dict(self.fields)
        for name, parts in self.files.items():
            data: list[Any] = [part.data for part in parts]
            if name in form:
                previous = form[name]
                data = (previous if isinstance(previous, list) else [previous]) + data
            form[name] = data if len(data) > 1 else data[0]
        return form


@dataclass
class FileRequest:
    """One GET of a file the double serves, as it arrived: which hop of its chain, at which of the double's two
    addresses, with which Authorization header (a key must never follow a link away from the gateway)."""

    hop: int  # 0 for a plain file; a redirect's place in its chain
    address: str  # root_url or second_root_url: where the client sent it
    authorization: str | None
    at: float  # time.monotonic() on arrival
    sent: int = 0  # body bytes written before the answer ended or the client hung up
    complete: bool = False  # the whole body was written: a client that stops at a cap never gets this far


@dataclass
class ServedFile:
    """Something the double serves at `url` (a picture, a large picture, a redirect chain) and the requests it has
    had so far, every hop of a chain included, in order of arrival."""

    url: str
    requests: list[FileRequest] = field(default_factory=list)


@dataclass
class _File:
    served: ServedFile
    hop: int = 0
    location: str | None = None  # a redirect to this URL
    data: bytes = b""  # a small file, held in memory
    size: int = 0  # a large picture, streamed: a PNG head, then zeros up to this many bytes
    declare_length: bool = True
    content_type: str = "image/png"


def _png_head(width: int, height: int, size: int) -> bytes:
    """A PNG signature, its IHDR chunk and the start of an IDAT chunk filling the file to `size` bytes: what a
    sniffer or an image library reads first, so a large file passes every check made before its end."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    head += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return head + struct.pack(">I", max(0, size - len(head) - 8)) + b"IDAT"


def last_user_text(body: Any) -> str:
    """The text of the last user message of a chat request (its text parts when content is a list)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [part for part in content if isinstance(part, dict) and part.get("type") == "text"]
                return " ".join(str(part.get("text", "")) for part in texts)
            return ""
    return ""


def split_evenly(text: str, pieces: int) -> list[str]:
    """The text cut into at most `pieces` pieces of about the same length (none for an empty text)."""
    size = max(1, math.ceil(len(text) / max(1, pieces)))
    return [text[start : start + size] for start in range(0, len(text), size)]


def last_user_text_contains(text: str) -> Predicate:
    """A rule matcher for chat calls whose last user message contains `text`."""
    return lambda call: text in last_user_text(call.json)


def openai_error(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body, with the type the API uses for that status."""
    kind = "requests" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    if status == 429 and code is None:
        code = "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body, with the type its API uses for that status."""
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def model_not_found_error(model: str, request_id: str) -> dict[str, Any]:
    """new-api's answer when no channel serves the model (HTTP 503, sometimes 404), on every route, the Anthropic
    one included. Its message ends with the request id, as all of new-api's own errors do; `param` is not sent by
    new-api but the OpenAI spec requires it, so it is null here."""
    message = f"当前分组 {NEW_API_GROUP} 下对于模型 {model} 无可用渠道 (request id: {request_id})"
    return {"error": {"code": MODEL_NOT_FOUND, "message": message, "type": "new_api_error", "param": None}}


def _tokens(text: str) -> int:
    """Roughly four characters a token, as OpenAI's rule of thumb says."""
    return max(1, math.ceil(len(text) / 4))


def estimate_tokens(text: str) -> int:
    """Roughly four characters a token (for routes defined in other modules)."""
    return _tokens(text)


def _normalise(path: str) -> str:
    if path == MESSAGES_PATH or path.startswith(MESSAGES_PATH + "/"):
        return path
    return path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else path


def _safe(predicate: Predicate, call: GatewayCall) -> bool:
    # A predicate written for JSON calls may trip over a multipart one (call.json is None): that is a no.
    try:
        return bool(predicate(call))
    except (KeyError, TypeError, AttributeError, IndexError):
        return False


@dataclass
class _AudioReply:
    seconds: float
    transcript: str | None
    header: str


class Rule:
    """A scripted answer for matching calls; build it with GatewayDouble.when() and the fluent methods."""

    def __init__(self, path: str, match: Predicate | None, times: int | None) -> None:
        self.path = _normalise(path)
        self.match = match
        self.remaining = times
        self.hits = 0
        self._delay = 0.0
        self._text: str | None = None
        self._audio: _AudioReply | None = None
        self._transcript: str | None = None
        self._canned: Callable[[GatewayCall], web.Response] | None = None
        self._pace: tuple[int, float] | None = None
        self._image_url: str | None = None
        self._tool_calls: list[Any] | None = None  # tools.ScriptedToolCall
        self._search: Any = None  # responses.ScriptedSearch
        self._audio_streaming = "streams"  # or how a gateway that does not stream audio answers: spoken.py

    def applies(self, call: GatewayCall) -> bool:
        """Whether this rule answers the call. A rule that calls tools answers the round before the tools' results
        only: the round that carries them (its last message is a tool message) is answered as usual."""
        if self.path != call.path or (self.match is not None and not _safe(self.match, call)):
            return False
        if self._tool_calls is not None:
            messages = call.json.get("messages") if isinstance(call.json, dict) else None
            last = messages[-1] if isinstance(messages, list) and messages else None
            return not (isinstance(last, dict) and last.get("role") == "tool")
        return True

    def _only_for(self, *paths: str) -> None:
        if self.path not in paths:
            raise ValueError(f"this reply applies to {', '.join(paths)}, not to {self.path}")

    def reply_text(self, text: str) -> Rule:
        """Answer a chat completion, or an Anthropic message, with this text (streamed too, when asked); on
        /responses, a plain message with this text and no search."""
        self._only_for("/chat/completions", MESSAGES_PATH, RESPONSES_PATH)
        self._text = text
        return self

    def call_tool(self, name: str, arguments: dict[str, Any] | str, *, id: str | None = None) -> Rule:
        """Answer a chat completion by calling the function `name` (which the request must offer) with these
        arguments (a dict, sent as JSON; a str is sent as it is, e.g. malformed JSON). See tools.py."""
        return self.call_tools([(name, arguments, id)])

    def call_tools(self, calls: Sequence[tuple[Any, ...]]) -> Rule:
        """Answer a chat completion by calling several functions at once: (name, arguments) or
        (name, arguments, id) each, in this order."""
        from .tools import scripted_tool_calls

        self._only_for("/chat/completions")
        self._tool_calls = scripted_tool_calls(calls)
        return self

    def reply_search(
        self, text: str, sources: Sequence[tuple[str, str, int, int]] = (), *, query: str | None = None
    ) -> Rule:
        """Answer /responses with a web search (of `query`, by default the input's text) and this text, citing
        each source (url, title, start_index, end_index) over text[start:end]. See responses.py."""
        from .responses import ScriptedSearch

        self._only_for(RESPONSES_PATH)
        self._search = ScriptedSearch.of(text, sources, query)
        return self

    def reply_audio(
        self, seconds: float = DEFAULT_AUDIO_SECONDS, transcript: str | None = None, header: str = "normal"
    ) -> Rule:
        """Answer with a WAV tone of this length; header "zero"/"ffff" fakes a streaming encoder's sizes."""
        self._only_for("/chat/completions", "/audio/speech")
        if header not in ("normal", "zero", "ffff"):
            raise ValueError(f"unknown WAV header style {header!r}: use normal, zero or ffff")
        self._audio = _AudioReply(seconds, transcript, header)
        return self

    def audio_not_streamed(self, how: str = "refuses") -> Rule:
        """Answer a streamed audio request as a gateway that does not stream audio: it "refuses" (a 400), or sends
        "words only" (the transcript, no audio). See spoken.py."""
        from .spoken import NOT_STREAMED

        self._only_for("/chat/completions")
        if how not in NOT_STREAMED:
            raise ValueError(f"unknown way {how!r}: use one of {', '.join(NOT_STREAMED)}")
        self._audio_streaming = how
        return self

    def transcript(self, text: str) -> Rule:
        """Answer a transcription with this text."""
        self._only_for("/audio/transcriptions")
        self._transcript = text
        return self

    def reply_image_url(self, url: str) -> Rule:
        """Answer an image request with a link instead of base64, as dall-e models (and gateways relaying other
        providers) do; the answer is still checked against the spec, which allows `url` for an image."""
        self._only_for("/images/generations", "/images/edits")
        self._image_url = url
        return self

    def reply_json(self, status: int, body: dict[str, Any]) -> Rule:
        """Answer exactly this JSON (not checked against the spec: it is the test's choice)."""
        self._canned = lambda call: web.json_response(body, status=status)
        return self

    def reply_status(
        self, status: int, message: str = "scripted error", headers: dict[str, str] | None = None
    ) -> Rule:
        """Answer an error in OpenAI's shape, or Anthropic's on /v1/messages (with extra headers, e.g. Retry-After
        on a 429)."""
        body = anthropic_error(status, message) if self.path == MESSAGES_PATH else openai_error(status, message)
        self._canned = lambda call: web.json_response(body, status=status, headers=headers)
        return self

    def reply_raw(self, status: int, body: bytes, content_type: str = "application/json") -> Rule:
        """Answer these bytes as they are, e.g. malformed JSON."""
        self._canned = lambda call: web.Response(status=status, body=body, headers={"Content-Type": content_type})
        return self

    def model_not_served(self, status: int = 503) -> Rule:
        """Answer as new-api does when no channel serves the call's model (503, or 404 as some of its versions
        do), even though the catalog lists it: e.g. only for calls that ask for audio."""
        if status not in (503, 404):
            raise ValueError(f"new-api answers an unserved model with 503 or 404, not {status}")

        def answer(call: GatewayCall) -> web.Response:
            body = model_not_found_error(call.model or NEW_API_DEFAULT_MODELS.get(call.path, ""), call.request_id)
            return web.json_response(body, status=status)

        self._canned = answer
        return self

    def paced(self, pieces: int, gap: float) -> Rule:
        """Stream the answer (when streaming is asked for) in this many pieces, `gap` seconds apart."""
        self._pace = (pieces, gap)
        return self

    def delay(self, seconds: float) -> Rule:
        """Wait this long before answering (the wait ends early if the client disconnects)."""
        self._delay = seconds
        return self


@dataclass
class _Endpoint:
    content_type: str
    check: Callable[[GatewayCall], Awaitable[list[str]]]  # problems the spec cannot see, or the double's limits
    answer: Callable[[web.Request, GatewayCall, Rule | None], Awaitable[web.StreamResponse]]


# aiohttp 3.14 wants typed keys for per-request storage; older releases, which aiogram still allows, only take strings.
_CALL_KEY: Any = web.RequestKey("gateway_call", GatewayCall) if hasattr(web, "RequestKey") else "gateway_call"


class GatewayDouble:
    """An aiohttp server on 127.0.0.1 answering like the AI gateway; other modules add routes to .app before start()."""

    def __init__(self, api_key: str, spec: OpenAISpec | None, check_uploads: bool = True) -> None:
        self.api_key = api_key
        self.spec = spec
        # Decoding every uploaded file proves the bot sends real media; a benchmark turns it off, since the
        # double shares the machine with the bot being measured.
        self.check_uploads = check_uploads
        self.calls: list[GatewayCall] = []
        self.violations: list[str] = []
        self.transcripts: dict[str, str] = {}  # sha256 hex of the uploaded file -> its transcript
        self.port: int | None = None
        self.second_port: int | None = None
        self._files: dict[str, _File] = {}  # name under FILES_PREFIX -> what it serves
        self._rules: list[Rule] = []
        self._waiters: list[tuple[Predicate, asyncio.Future[GatewayCall]]] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[self._public_files, self._middleware], client_max_size=256 * 2**20)
        self.app.on_response_prepare.append(self._stamp_request_id)
        self._endpoints = {
            "/audio/transcriptions": _Endpoint(
                "multipart/form-data", self._check_transcription, self._transcription
            ),
            "/chat/completions": _Endpoint("application/json", self._check_chat, self._chat),
            "/images/generations": _Endpoint("application/json", self._check_generation, self._generation),
            "/images/edits": _Endpoint("multipart/form-data", self._check_edit, self._edit),
            "/audio/speech": _Endpoint("application/json", self._check_speech, self._speech),
            "/embeddings": _Endpoint("application/json", self._check_embeddings, self._embeddings),
        }
        self.app.router.add_routes([web.post(API_PREFIX + path, self._handle) for path in self._endpoints])
        # The model catalog: id -> shutdown date (None: none announced). Tests change it to take models away; a
        # model it does not list is answered as new-api answers a model without a channel (see serves()).
        self.catalog: dict[str, str | None] = dict.fromkeys(DEFAULT_CATALOG)
        # Models the catalog lists but no channel serves: new-api lists what the key may use, routable or not.
        self.unroutable: set[str] = set()
        self.app.router.add_get(API_PREFIX + "/models", self._models)
        from .anthropic import AnthropicMessages  # it builds on this module, so it is imported once this one is

        self.anthropic = AnthropicMessages(self)  # POST /v1/messages
        from .responses import ResponsesAPI
        from .tools import ChatTools

        self.tools = ChatTools(self)  # tool calls, their results and structured output on /chat/completions
        self.searches: list[str] = []  # the query of every web search /responses made, in order
        self.responses = ResponsesAPI(self)  # POST /v1/responses

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on two free ports of 127.0.0.1 in the running event loop (see second_root_url)."""
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(2)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        self.port, self.second_port = (sock.getsockname()[1] for sock in sockets)
        # handler_cancellation: a client that hangs up cancels its handler, ending any scripted delay;
        # a short shutdown grace, so a call still held by a delay does not hold up the test's teardown.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None, shutdown_timeout=0.25)
        await self._runner.setup()
        for sock in sockets:
            await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        """The server root (the bot's MJ_BASE_URL)."""
        if self.port is None:
            raise RuntimeError("the gateway double is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base (the bot's API_BASE_URL)."""
        return self.root_url + API_PREFIX

    @property
    def second_root_url(self) -> str:
        """The same server on its second port: to a client another origin (host and port), as the CDN a link
        points to would be. Redirect chains hop between the two addresses to show where a key travels."""
        if self.second_port is None:
            raise RuntimeError("the gateway double is not started")
        return f"http://127.0.0.1:{self.second_port}"

    # --- what tests use ------------------------------------------------------------------------

    def set_transcript(self, data: bytes, text: str) -> None:
        """Transcribe an upload of exactly these bytes as `text`."""
        self.transcripts[hashlib.sha256(data).hexdigest()] = text

    def when(self, path: str, match: Predicate | None = None, *, times: int | None = None) -> Rule:
        """Script answers for calls to `path`; the first matching rule wins, and one with `times` expires."""
        rule = Rule(path, match, times)
        self._rules.append(rule)
        return rule

    def reset_rules(self) -> None:
        """Forget the scripted rules and the searches made, and bring the catalog and the unroutable models back to
        their defaults (the e2e suite calls this after every test, since one double serves them all)."""
        self._rules.clear()
        self.searches.clear()
        self.catalog.clear()
        self.catalog.update(dict.fromkeys(DEFAULT_CATALOG))
        self.unroutable.clear()

    def add_route(
        self,
        path: str,
        content_type: str,
        check: Callable[[GatewayCall], Awaitable[list[str]]],
        answer: Callable[[web.Request, GatewayCall, Rule | None], Awaitable[web.StreamResponse]],
    ) -> None:
        """Serve POST /v1{path} as the built-in OpenAI routes are served: checked against the spec, routed by
        its model, then `check` (problems the spec cannot see), scripted, and `answer` (before start())."""
        self._endpoints[path] = _Endpoint(content_type, check, answer)
        self.app.router.add_post(API_PREFIX + path, self._handle)

    def serves(self, model: str) -> bool:
        """Whether a call naming this model reaches a channel: the catalog lists it and it is not unroutable."""
        return model in self.catalog and model not in self.unroutable

    def not_served(self, call: GatewayCall, model: str, status: int = 503) -> web.Response:
        """new-api's answer to a call whose model no channel serves. Not a violation: the bot is expected to try
        models that are gone and fall back."""
        return self._json(call, model_not_found_error(model, call.request_id), status)

    def drop(self, rule: Rule) -> None:
        """End a rule before its `times` run out: a fault that lasts until the test has seen what it causes."""
        if rule in self._rules:
            self._rules.remove(rule)

    def serve_picture(self, data: bytes, content_type: str = "image/png") -> ServedFile:
        """Serve these bytes at a URL of their own, without a key, as a CDN serves the pictures links point to."""
        return self._serve(_File(ServedFile(""), data=data, content_type=content_type))

    def serve_large_picture(self, size: int, *, declare_length: bool = True) -> ServedFile:
        """Serve a picture of `size` bytes without ever holding it: a real PNG head, then zeros, streamed a
        megabyte at a time (waiting for the client to read), with a Content-Length header, or chunked and
        without one (declare_length=False), so that only counting the bytes can stop a reader."""
        return self._serve(_File(ServedFile(""), size=size, declare_length=declare_length))

    def serve_redirects(self, target: str, via: Sequence[str]) -> ServedFile:
        """A chain of len(via) redirects (302, absolute Locations) ending at `target`, which may be any URL (a
        served file, an ftp:// address): hop n is served at the base URL via[n] (root_url or second_root_url).
        Its requests are those of every hop, each knowing its hop, address and Authorization header."""
        if not via:
            raise ValueError("a redirect chain needs at least one hop")
        served = ServedFile("")
        names = [f"{secrets.token_hex(8)}-hop{hop}" for hop in range(len(via))]
        locations = [f"{base}{FILES_PREFIX}{name}" for base, name in zip(via, names, strict=True)]
        for hop, name in enumerate(names):
            following = locations[hop + 1] if hop + 1 < len(names) else target
            self._files[name] = _File(served, hop=hop, location=following)
        served.url = locations[0]
        return served

    def _serve(self, file: _File) -> ServedFile:
        name = secrets.token_hex(8) + (".png" if file.content_type == "image/png" else "")
        self._files[name] = file
        file.served.url = f"{self.root_url}{FILES_PREFIX}{name}"
        return file.served

    def calls_to(self, path: str) -> list[GatewayCall]:
        path = _normalise(path)
        return [call for call in self.calls if call.path == path]

    async def wait_for(self, predicate: Predicate | None = None, timeout: float = 15.0) -> GatewayCall:
        """The first call, recorded or yet to come, that matches (checked on arrival and again once answered)."""
        predicate = predicate or (lambda call: True)
        for call in self.calls:
            if _safe(predicate, call):
                return call
        waiter: tuple[Predicate, asyncio.Future[GatewayCall]] = (
            predicate,
            asyncio.get_running_loop().create_future(),
        )
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter[1], timeout)
        except TimeoutError:
            seen = ", ".join(f"{call.method} {call.path} -> {call.status}" for call in self.calls) or "none"
            raise AssertionError(f"no gateway call matched within {timeout}s (calls: {seen})") from None
        finally:
            self._waiters.remove(waiter)

    async def scripted(self, call: GatewayCall) -> tuple[Rule | None, web.StreamResponse | None]:
        """Take the rule for this call, wait its delay, and return it with its canned response, if it has one.

        Routes added by other modules call this to get the same scripting as the built-in ones.
        """
        rule = next(
            (rule for rule in self._rules if rule.applies(call)),
            None,
        )
        if rule is None:
            return None, None
        rule.hits += 1
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rules.remove(rule)
        if rule._delay:
            await asyncio.sleep(rule._delay)
        return rule, rule._canned(call) if rule._canned else None

    @staticmethod
    def call_of(request: web.Request) -> GatewayCall:
        """The recorded call of a request being handled (for routes added by other modules)."""
        return request[_CALL_KEY]

    def reject(self, call: GatewayCall, problems: list[str], status: int = 400) -> web.Response:
        """Record the problems as violations and answer them in OpenAI's error shape (Anthropic's on its route)."""
        call.violations.extend(problems)
        self.violations.extend(f"{call.method} {call.path}: {problem}" for problem in problems)
        if call.path == MESSAGES_PATH:
            return web.json_response(anthropic_error(status, "; ".join(problems)), status=status)
        return self._json(call, openai_error(status, "; ".join(problems)), status)

    # --- plumbing ------------------------------------------------------------------------------

    def _notify(self, call: GatewayCall) -> None:
        for predicate, future in self._waiters:
            if not future.done() and _safe(predicate, call):
                future.set_result(call)

    def _check_answer(
        self, call: GatewayCall, body: Any, status: int = 200, content_type: str = "application/json"
    ) -> None:
        # The double must only send what the real API sends: its own wrong answers are violations too.
        if self.spec is not None and self.spec.has_operation(call.path, call.method):
            for problem in self.spec.validate_response(call.path, body, status, content_type, call.method.lower()):
                self.violations.append(f"the double itself answered {call.path} wrongly: {problem}")

    def _json(self, call: GatewayCall, body: dict[str, Any], status: int = 200) -> web.Response:
        self._check_answer(call, body, status)
        return web.json_response(body, status=status)

    def answer_json(self, call: GatewayCall, body: dict[str, Any], status: int = 200) -> web.Response:
        """A JSON answer, checked against the spec first (for routes defined in other modules)."""
        return self._json(call, body, status)

    async def _stamp_request_id(self, request: web.Request, response: web.StreamResponse) -> None:
        if _CALL_KEY in request:
            response.headers["x-request-id"] = request[_CALL_KEY].request_id

    async def _record(self, request: web.Request) -> tuple[GatewayCall, list[str]]:
        """The call, and what is wrong with its body as HTTP (before any route looks at it)."""
        problems: list[str] = []
        call = GatewayCall(
            path=_normalise(request.path),
            method=request.method,
            request_id="req_" + secrets.token_hex(16),
            headers=CIMultiDict(request.headers),
            at=time.monotonic(),
            content_type=request.content_type,
            query=dict(request.query),
        )
        if request.content_type == "multipart/form-data":
            try:
                await self._read_multipart(request, call, problems)
            except ValueError as exc:
                problems.append(f"malformed multipart body: {exc}")
        elif request.body_exists:
            raw = await request.read()
            if request.content_type == "application/json":
                try:
                    call.json = json.loads(raw)
                except ValueError as exc:
                    problems.append(f"body is not valid JSON: {exc}")
        return call, problems

    async def _read_multipart(self, request: web.Request, call: GatewayCall, problems: list[str]) -> None:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                problems.append("multipart body has a nested or unnamed part")
            elif part.filename is not None:
                upload = UploadedPart(part.filename, part.headers.get("Content-Type"), bytes(await part.read()))
                call.files.setdefault(part.name, []).append(upload)
            else:
                value = await part.text()
                previous = call.fields.get(part.name)
                if previous is None:
                    call.fields[part.name] = value
                else:
                    call.fields[part.name] = (previous if isinstance(previous, list) else [previous]) + [value]

    @web.middleware
    async def _public_files(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # Placed before the middleware that records calls and demands the key: a link's file needs none.
        if request.path.startswith(FILES_PREFIX):
            return await self._serve_file(request)
        return await handler(request)

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        file = self._files.get(request.path[len(FILES_PREFIX) :])
        if file is None or request.method != "GET":
            return web.Response(status=404, text="no such file")
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        port = sockname[1] if sockname else None
        address = self.second_root_url if port == self.second_port else self.root_url
        record = FileRequest(file.hop, address, request.headers.get("Authorization"), time.monotonic())
        file.served.requests.append(record)
        if file.location is not None:
            return web.Response(status=302, headers={"Location": file.location})
        if not file.size:
            record.sent, record.complete = len(file.data), True
            return web.Response(body=file.data, headers={"Content-Type": file.content_type})
        return await self._stream_large(request, file, record)

    async def _stream_large(self, request: web.Request, file: _File, record: FileRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": file.content_type})
        if file.declare_length:
            response.content_length = file.size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        filler = memoryview(_FILLER)
        try:
            head = _png_head(*LARGE_PICTURE_SIDES, file.size)[: file.size]
            await response.write(head)
            record.sent = len(head)
            while record.sent < file.size:
                piece = filler[: min(len(filler), file.size - record.sent)]
                await response.write(piece)  # waits while the client is not reading
                record.sent += len(piece)
            await response.write_eof()
        except ConnectionError:  # the client hung up before the end, as a reader with a cap does
            return response
        record.complete = True
        return response

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        call, problems = await self._record(request)
        request[_CALL_KEY] = call
        self.calls.append(call)
        self._notify(call)
        try:
            if self._presented_key(request) != self.api_key:
                # Answered as the gateway would, and recorded: the bot must always send its key.
                problem = f"{request.method} {request.path}: missing or wrong API key"
                call.violations.append(problem)
                self.violations.append(problem)
                body = openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
                response: web.StreamResponse = self._json(call, body, 401)
            elif request.match_info.http_exception is not None:  # no route: the bot called something unknown
                response = self.reject(call, [f"Invalid URL ({request.method} {request.path})"], 404)
            elif problems:
                response = self.reject(call, problems)
            else:
                response = await handler(request)
        except asyncio.CancelledError:
            call.disconnected = True
            self._notify(call)
            raise
        call.status = response.status
        self._notify(call)
        return response

    @staticmethod
    def _presented_key(request: web.Request) -> str | None:
        # As new-api reads it: a Bearer token, or on its Anthropic and model-list routes an x-api-key header,
        # which then takes the place of any Authorization header.
        anthropic_key = request.headers.get("x-api-key")
        if anthropic_key and ("/v1/messages" in request.path or "/v1/models" in request.path):
            return anthropic_key
        authorization = request.headers.get("Authorization", "")
        return authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = self.call_of(request)
        endpoint = self._endpoints[call.path]
        problems: list[str] = []
        if call.content_type == "application/json" and not isinstance(call.json, dict):
            problems = ["the JSON body is not an object"]
        if not problems and self.spec is not None:
            body = call.form() if call.content_type == "multipart/form-data" else call.json
            problems = self.spec.validate_request(call.path, call.content_type, body)
        if not problems and call.content_type != endpoint.content_type:
            problems = [
                f"content type {call.content_type!r}: the double serves {call.path} as {endpoint.content_type}"
            ]
        if problems:
            return self.reject(call, problems)
        # new-api chooses a channel by the model before relaying: a model without one is answered at once.
        model = call.model or NEW_API_DEFAULT_MODELS.get(call.path)
        if model is not None and not self.serves(model):
            return self.not_served(call, model)
        problems = await endpoint.check(call)
        if problems:
            return self.reject(call, problems)
        rule, canned = await self.scripted(call)
        if canned is not None:
            return canned
        return await endpoint.answer(request, call, rule)

    # --- /audio/transcriptions -----------------------------------------------------------------

    async def _check_transcription(self, call: GatewayCall) -> list[str]:
        files = call.uploads("file")
        if len(files) != 1:
            return ["exactly one file part named 'file' is required"]
        problems = []
        extension = PurePosixPath(files[0].filename or "").suffix.lstrip(".").lower()
        if extension not in TRANSCRIBABLE_EXTENSIONS:
            supported = list(TRANSCRIBABLE_EXTENSIONS)
            problems.append(
                f"Invalid file format. Supported formats: {supported} (file name {files[0].filename!r})"
            )
        if self.check_uploads:
            try:
                await asyncio.to_thread(decode_with_ffmpeg, files[0].data)
            except ValueError as exc:
                problems.append(f"the uploaded file does not decode as audio ({exc})")
        response_format = call.fields.get("response_format", "json")
        if response_format not in ("json", "text", "verbose_json"):
            problems.append(f"{UNSUPPORTED} response_format {response_format!r}")
        if call.fields.get("stream") == "true":
            problems.append(f"{UNSUPPORTED} streamed transcription")
        return problems

    async def _transcription(
        self, request: web.Request, call: GatewayCall, rule: Rule | None
    ) -> web.StreamResponse:
        data = call.uploads("file")[0].data
        text = rule._transcript if rule else None
        if text is None:
            text = self.transcripts.get(hashlib.sha256(data).hexdigest(), DEFAULT_TRANSCRIPT)
        response_format = call.fields.get("response_format", "json")
        if response_format == "text":
            return web.Response(text=text + "\n", content_type="text/plain")  # the API ends it with a newline
        if response_format == "json":
            return self._json(call, {"text": text})
        seconds, _rate, _channels = await asyncio.to_thread(decode_with_ffmpeg, data)
        segment = {
            "id": 0,
            "seek": 0,
            "start": 0.0,
            "end": round(seconds, 2),
            "text": " " + text,
            "tokens": list(range(50364, 50364 + _tokens(text))),
            "temperature": 0.0,
            "avg_logprob": -0.25,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.01,
        }
        return self._json(
            call,
            {
                "task": "transcribe",
                "language": "english",
                "duration": round(seconds, 2),
                "text": text,
                "segments": [segment],
                "usage": {"type": "duration", "seconds": math.ceil(seconds)},
            },
        )

    # --- /chat/completions ---------------------------------------------------------------------

    async def _check_chat(self, call: GatewayCall) -> list[str]:
        body = call.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return ["messages must be a non-empty list"]
        problems = self.tools.problems(body)  # tool messages without their call, structured output refused...
        if "audio" not in (body.get("modalities") or []):
            return problems
        audio_format = (body.get("audio") or {}).get("format")
        if body.get("stream") and audio_format != "pcm16":
            problems.append(f"audio.format {audio_format!r} cannot be streamed: the API streams pcm16 only")
        if not body.get("stream") and audio_format != "wav":
            problems.append(f"{UNSUPPORTED} audio.format {audio_format!r}; it only produces wav (pcm16 streamed)")
        return problems

    def _prompt_usage(self, messages: list[Any]) -> tuple[int, int]:
        """(all prompt tokens, audio prompt tokens), from the lengths of the messages."""
        text_tokens, audio_tokens = 0, 0
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            text_tokens += 4  # per-message overhead of the chat format
            for part in content if isinstance(content, list) else [content]:
                if isinstance(part, str):
                    text_tokens += _tokens(part)
                elif isinstance(part, dict) and part.get("type") == "text":
                    text_tokens += _tokens(str(part.get("text", "")))
                elif isinstance(part, dict) and part.get("type") == "input_audio":
                    audio_tokens += max(1, len(str((part.get("input_audio") or {}).get("data", ""))) // 1000)
        return text_tokens + audio_tokens, audio_tokens

    def chat_usage(self, body: dict[str, Any], text_out: int, audio_out: int = 0) -> dict[str, Any]:
        """A chat completion's usage: the prompt counted from the request, the completion as given."""
        prompt_tokens, prompt_audio = self._prompt_usage(body["messages"])
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": text_out + audio_out,
            "total_tokens": prompt_tokens + text_out + audio_out,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": prompt_audio},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": audio_out,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def chat_head(body: dict[str, Any]) -> dict[str, Any]:
        """What every chat completion (and each of its chunks) starts with."""
        return {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "service_tier": "default",
            "system_fingerprint": "fp_gateway_double",
        }

    async def _chat(self, request: web.Request, call: GatewayCall, rule: Rule | None) -> web.StreamResponse:
        body = call.json
        if rule is not None and rule._tool_calls is not None:
            return await self.tools.answer_with_calls(request, call, rule)
        user_text = last_user_text(body)
        # The text after tool results, or JSON filling a json_schema; None for a plain echo.
        default = self.tools.default_text(body)
        audio = rule._audio if rule else None
        if audio is None and "audio" in (body.get("modalities") or []) and not (rule and rule._text is not None):
            audio = _AudioReply(DEFAULT_AUDIO_SECONDS, None, "normal")
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if audio is not None:
            transcript = audio.transcript
            if transcript is None:
                transcript = default if default is not None else "spoken: " + user_text
            if body.get("stream"):
                from .spoken import stream_spoken_answer

                return await stream_spoken_answer(self, request, call, rule, audio.seconds, transcript)
            wav = make_wav(audio.seconds, AUDIO_RATE, 1, 440.0, audio.header)
            message["audio"] = {
                "id": "audio_" + secrets.token_hex(12),
                "data": base64.b64encode(wav).decode("ascii"),
                "expires_at": int(time.time()) + 3600,
                "transcript": transcript,
            }
            text_out, audio_out = _tokens(transcript), math.ceil(audio.seconds * 10)
        else:
            if rule and rule._text is not None:
                message["content"] = rule._text
            else:
                message["content"] = default if default is not None else "echo: " + user_text
            text_out, audio_out = _tokens(message["content"]), 0
        usage = self.chat_usage(body, text_out, audio_out)
        head = self.chat_head(body)
        if body.get("stream"):
            # Several pieces, so clients really have to join them; a paced rule sends them slowly, like a model.
            pieces, gap = (rule._pace if rule else None) or (4, 0.0)
            deltas = [{"role": "assistant", "content": "", "refusal": None}]
            deltas += [{"content": piece} for piece in split_evenly(message["content"], pieces)]
            return await self.stream_chat(request, call, head, deltas, "stop", usage, gap)
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return self._json(call, {**head, "object": "chat.completion", "choices": [choice], "usage": usage})

    async def stream_chat(
        self,
        request: web.Request,
        call: GatewayCall,
        head: dict[str, Any],
        deltas: Sequence[dict[str, Any]],
        finish_reason: str,
        usage: dict[str, Any],
        gap: float = 0.0,
    ) -> web.StreamResponse:
        """A chat completion as the API streams it: a chunk for each delta (the first opens the message, and
        `gap` seconds pass before each one after the second), one with the finish reason and an empty delta,
        the usage chunk when stream_options.include_usage asks for it, then [DONE]. Every chunk is checked."""
        include_usage = bool((call.json.get("stream_options") or {}).get("include_usage"))
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
            if include_usage and "usage" not in chunk:
                chunk["usage"] = None  # the API marks every chunk but the last this way
            self._check_answer(call, chunk, content_type="text/event-stream")
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        for number, content in enumerate(deltas):
            if gap and number > 1:
                await asyncio.sleep(gap)
            await send(delta(content))
        await send(delta({}, finish_reason))
        if include_usage:
            await send([], usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        call.ended_at = time.monotonic()
        return response

    # --- /images/generations and /images/edits -------------------------------------------------

    def _image_limits(self, options: dict[str, Any]) -> list[str]:
        problems = []
        if options.get("response_format") == "url":
            problems.append(f"{UNSUPPORTED} response_format 'url' (it answers b64_json, as gpt-image-1 does)")
        if options.get("stream") in (True, "true"):
            problems.append(f"{UNSUPPORTED} streamed images")
        return problems

    async def _check_generation(self, call: GatewayCall) -> list[str]:
        body = call.json
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            return ["prompt must be a string"]
        return self._image_limits(body)

    async def _check_edit(self, call: GatewayCall) -> list[str]:
        images = call.uploads("image")
        if not images or "prompt" not in call.fields:
            return ["an image file part and a prompt field are required"]
        problems = self._image_limits(call.fields)
        for index, image in enumerate(images):
            try:
                await asyncio.to_thread(image_size, image.data)
            except ValueError as exc:
                problems.append(f"image {index} ({image.filename!r}) is not a PNG, JPEG or WEBP image: {exc}")
        return problems

    async def _images_answer(
        self,
        call: GatewayCall,
        options: dict[str, Any],
        seed: bytes,
        width: int,
        height: int,
        url: str | None = None,
    ) -> web.Response:
        output_format = options.get("output_format") or "png"
        make = {"png": make_png, "jpeg": make_jpeg, "webp": make_webp}[output_format]
        prompt = str(options.get("prompt", ""))
        count = int(options.get("n") or 1)
        if url is not None:  # a link for each image, as dall-e answers: no usage, no format fields
            links = [{"url": url, "revised_prompt": prompt} for _ in range(count)]
            return self._json(call, {"created": int(time.time()), "data": links})
        data = []
        for index in range(count):
            # A colour from the request, so each answer (and each of n images) looks different.
            colour = tuple(hashlib.sha256(seed + bytes([index])).digest()[:3])
            image = await asyncio.to_thread(make, width, height, colour)
            data.append({"b64_json": base64.b64encode(image).decode("ascii"), "revised_prompt": prompt})
        size = f"{width}x{height}"
        quality = options.get("quality")
        body: dict[str, Any] = {
            "created": int(time.time()),
            "background": "transparent" if options.get("background") == "transparent" else "opaque",
            "data": data,
            "output_format": output_format,
            "quality": quality if quality in ("low", "medium", "high") else "medium",
            "usage": {
                "input_tokens": _tokens(prompt),
                "input_tokens_details": {"text_tokens": _tokens(prompt), "image_tokens": 0},
                "output_tokens": 1056 * count,
                "output_tokens_details": {"image_tokens": 1056 * count, "text_tokens": 0},
                "total_tokens": _tokens(prompt) + 1056 * count,
            },
        }
        if size in ("1024x1024", "1024x1536", "1536x1024"):  # the only sizes the answer schema names
            body["size"] = size
        return self._json(call, body)

    async def _generation(self, request: web.Request, call: GatewayCall, rule: Rule | None) -> web.StreamResponse:
        body = call.json
        width, height = 1024, 1024  # what "auto" gives for a square prompt
        size = re.fullmatch(r"(\d+)x(\d+)", str(body.get("size") or "auto"))
        if size:
            width, height = int(size.group(1)), int(size.group(2))
        url = rule._image_url if rule else None
        return await self._images_answer(call, body, body["prompt"].encode(), width, height, url)

    async def _edit(self, request: web.Request, call: GatewayCall, rule: Rule | None) -> web.StreamResponse:
        first = call.uploads("image")[0].data
        _format, width, height = await asyncio.to_thread(image_size, first)
        options: dict[str, Any] = {key: value for key, value in call.fields.items() if isinstance(value, str)}
        seed = hashlib.sha256(first).digest() + options["prompt"].encode()
        return await self._images_answer(call, options, seed, width, height, rule._image_url if rule else None)

    # --- /models ---------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        call = self.call_of(request)
        rule, canned = await self.scripted(call)
        if canned is not None:
            return canned
        models = []
        for number, (model_id, shutdown) in enumerate(self.catalog.items()):
            model: dict[str, Any] = {"id": model_id, "object": "model", "created": 1_700_000_000 + number}
            model["owned_by"] = "anthropic" if model_id.startswith("claude") else "openai"
            if shutdown is not None:
                model["shutdown_date"] = shutdown
            models.append(model)
        return self._json(call, {"object": "list", "data": models})

    # --- /audio/speech -------------------------------------------------------------------------

    async def _check_speech(self, call: GatewayCall) -> list[str]:
        body = call.json
        if not isinstance(body, dict) or not isinstance(body.get("input"), str):
            return ["input must be a string"]
        problems = []
        response_format = body.get("response_format", "mp3")  # the API's default
        if response_format not in ("wav", "pcm"):
            problems.append(f"{UNSUPPORTED} response_format {response_format!r}; it only produces wav and pcm")
        if body.get("stream_format") == "sse":
            problems.append(f"{UNSUPPORTED} stream_format 'sse'")
        voice = body.get("voice")
        if isinstance(voice, str) and voice not in SPEECH_VOICES:
            problems.append(f"Invalid value for 'voice': {voice!r} is none of {', '.join(SPEECH_VOICES)}")
        return problems

    async def _speech(self, request: web.Request, call: GatewayCall, rule: Rule | None) -> web.StreamResponse:
        body = call.json
        audio = rule._audio if rule else None
        # Without a script, length follows the text (about 15 characters a second), so it is deterministic.
        seconds = audio.seconds if audio else min(10.0, max(0.5, len(body["input"]) / 15))
        if body["response_format"] == "pcm":
            data, content_type = make_pcm16(seconds, AUDIO_RATE, 1, 523.25), "audio/pcm"
        else:
            header = audio.header if audio else "normal"
            data, content_type = make_wav(seconds, AUDIO_RATE, 1, 523.25, header), "audio/wav"
        self._check_answer(call, data, content_type="application/octet-stream")  # the spec's name for it
        return web.Response(body=data, headers={"Content-Type": content_type})

    # --- /embeddings ---------------------------------------------------------------------------

    @staticmethod
    def _embedding_inputs(body: dict[str, Any]) -> list[Any]:
        value = body.get("input")
        if isinstance(value, list) and value and not isinstance(value[0], int):
            return value  # several strings, or several token arrays
        return [value]  # one string, or one token array

    async def _check_embeddings(self, call: GatewayCall) -> list[str]:
        body = call.json
        if "input" not in body:
            return ["input is required"]
        problems = []
        if any(item == "" for item in self._embedding_inputs(body)):
            problems.append("'$.input' is invalid: an input must not be an empty string")
        if "dimensions" in body and not str(body.get("model", "")).startswith("text-embedding-3"):
            problems.append("This model does not support specifying dimensions.")
        return problems

    async def _embeddings(self, request: web.Request, call: GatewayCall, rule: Rule | None) -> web.StreamResponse:
        body = call.json
        model = str(body.get("model", ""))
        size = int(body.get("dimensions") or EMBEDDING_DIMENSIONS.get(model, DEFAULT_EMBEDDING_DIMENSIONS))
        data: list[dict[str, Any]] = []
        tokens = 0
        for index, item in enumerate(self._embedding_inputs(body)):
            text = item if isinstance(item, str) else " ".join(str(token) for token in item)
            tokens += _tokens(text) if isinstance(item, str) else len(item)
            # A bag of words (meaning.py): texts sharing words are close, texts sharing none are orthogonal.
            vector = bag_of_words_vector(text, size)
            data.append({"object": "embedding", "index": index, "embedding": vector})
        answer = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._check_answer(call, answer)  # the spec describes the float form only
        if body.get("encoding_format") == "base64":
            for item in data:
                packed = struct.pack(f"<{len(item['embedding'])}f", *item["embedding"])
                item["embedding"] = base64.b64encode(packed).decode("ascii")
        return web.json_response(answer)
