"""A local Telegram Bot API server for tests: checks every call against the spec, records it, answers like Telegram."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import mimetypes
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import PurePosixPath
from typing import Any

from aiohttp import web

from .telegram_spec import EntityParseError, TelegramSpec, UploadedFile, parse_entities

__all__ = [
    "CHANNEL_BOT",
    "GROUP_ANONYMOUS_BOT",
    "TOPIC_ICON_COLORS",
    "Call",
    "StoredFile",
    "TelegramDouble",
    "TelegramError",
    "TelegramSpec",
    "UploadedFile",
]

log = logging.getLogger(__name__)

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # bots may download files up to 20 MB
_MAX_UPLOAD_SIZE = 60 * 1024 * 1024  # bots may upload up to 50 MB
_API_PATH = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)/?")
_FILE_PATH = re.compile(r"/file/bot(?P<token>[^/]+)/(?P<path>.+)")
# Telegram sends these update kinds only to bots that ask for them in allowed_updates.
_OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
_MESSAGE_UPDATES = ("message", "edited_message", "channel_post", "edited_channel_post", "business_message")
# send method -> (parameter and Message field, folder of the file_path, default suffix, default MIME type)
_MEDIA_METHODS = {
    "sendVoice": ("voice", "voice", ".oga", "audio/ogg"),
    "sendAudio": ("audio", "music", ".mp3", "audio/mpeg"),
    "sendPhoto": ("photo", "photos", ".jpg", "image/jpeg"),
    "sendDocument": ("document", "documents", "", "application/octet-stream"),
    "sendVideo": ("video", "videos", ".mp4", "video/mp4"),
    "sendAnimation": ("animation", "animations", ".mp4", "video/mp4"),
    "sendVideoNote": ("video_note", "video_notes", ".mp4", "video/mp4"),
    "sendSticker": ("sticker", "stickers", ".webp", "image/webp"),
}
_MEDIA_BY_KIND = {
    kind: (method, folder, suffix, mime) for method, (kind, folder, suffix, mime) in _MEDIA_METHODS.items()
}
_MEDIA_FIELDS = {kind for kind, *_ in _MEDIA_METHODS.values()} | {"location", "contact", "dice", "poll"}
# Free-text parameters stay strings even when they look like numbers (used only without a spec).
_FREE_TEXT = frozenset(
    "text caption quote question explanation title description short_description name secret_token"
    " callback_query_id inline_message_id file_id custom_emoji_id emoji url".split()
)
_THUMBNAIL_SIDE = 90
_DEFAULT_SIDE = 512
# The fake `from` Telegram puts on a message sent on behalf of a chat, for clients that read only `from`: the
# same two accounts for every anonymous group admin and every channel everywhere (the real sender is sender_chat).
GROUP_ANONYMOUS_BOT: dict[str, Any] = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT: dict[str, Any] = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
# The icon colours a forum topic may have (createForumTopic refuses others).
TOPIC_ICON_COLORS = (0x6FB9F0, 0xFFD67E, 0xCB86DB, 0x8EEE98, 0xFF93B2, 0xFB6F5F)
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{3,32}\b")


class TelegramError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad_request(what: str) -> TelegramError:
    return TelegramError(400, f"Bad Request: {what}")


@dataclass
class Call:
    """One Bot API request as the double saw and answered it."""

    method: str
    params: dict[str, Any]  # coerced: ints, bools, parsed JSON; direct uploads appear as "attach://<name>"
    files: dict[str, UploadedFile]  # by the parameter path that referenced them: "voice", "media[0].media"
    at: float  # time.monotonic() on arrival
    result: Any = None  # what was answered on success
    failed: bool = False  # answered with an error: a spec violation, an injected fault, or Telegram's refusal
    error_code: int | None = None
    description: str | None = None

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    def summary(self) -> str:
        shown = {k: v for k, v in self.params.items() if k in {"chat_id", "text", "caption", "message_id", "data"}}
        outcome = f" -> {self.error_code} {self.description}" if self.failed else ""
        return f"{self.method} {json.dumps(shown, ensure_ascii=False)[:160]}{outcome}"


@dataclass
class StoredFile:
    """A file Telegram holds: downloadable by file_path, re-sendable by file_id."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    size: int  # declared size; may exceed len(data) to stand for a big file
    meta: dict[str, Any] = field(default_factory=dict)  # mime_type, file_name, width, height, duration


@dataclass
class _Fault:
    method: str
    times: int
    error: TelegramError
    match: Callable[[Call], bool] | None


@dataclass
class _Delay:
    method: str
    seconds: float
    times: int


class _Signal:
    """Wakes every waiter at the next change; firing is synchronous, so plain methods can fire it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


class TelegramDouble:
    """A Bot API server on 127.0.0.1 that a bot under test talks to through TELEGRAM_API_URL."""

    def __init__(
        self, token: str, spec: TelegramSpec | None, bot_username: str = "WenwenTestBot", bot_id: int = 7000000001
    ) -> None:
        self.token = token
        self.spec = spec
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Wenwen",
            "username": bot_username,
        }
        self.base_url = ""
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.get_updates_calls = 0
        self.get_file_calls = 0
        self.downloads: list[str] = []
        self.webhook: dict[str, Any] | None = None
        self.files: dict[str, StoredFile] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        # chat id -> user ids getChatMember reports as that chat's administrators (everyone else is a member)
        self.chat_admins: dict[int, set[int]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.answered_callbacks: set[str] = set()
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._callback_queries: set[str] = set()
        self._files_by_path: dict[str, StoredFile] = {}
        self._pending: list[dict[str, Any]] = []
        self._allowed_updates: set[str] | None = None
        self._poll_generation = 0
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._next_message_id: dict[int, int] = {}
        self._update_ids = itertools.count(100_000_001)
        self._file_numbers = itertools.count(1)
        self._callback_numbers = itertools.count(1)
        self._media_groups = itertools.count(1)
        self._updates_signal = _Signal()
        self._calls_signal = _Signal()
        self._in_flight = 0
        self.methods_in_flight: list[str] = []  # calls received and not answered yet, by method
        self._last_activity = time.monotonic()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers = self._handler_table()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=_MAX_UPLOAD_SIZE)
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._closing = True
        self._updates_signal.fire()  # long polls answer at once instead of holding shutdown up
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- test controls -------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        times: int = 1,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        match: Callable[[Call], bool] | None = None,
    ) -> None:
        """Answer the next `times` valid calls of `method` (those `match` accepts) with an error."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}" if error_code == 429 else _phrase(error_code)
            )
        self._faults.append(_Fault(method, times, TelegramError(error_code, description, retry_after), match))

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """Hold the answer to the next `times` calls of `method` for `seconds`."""
        self._delays.append(_Delay(method, seconds, times))

    def my_commands(self, scope: Mapping[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]]:
        """The command list setMyCommands stored for a scope (default scope when None) and language."""
        return self._commands.get(_commands_key(scope, language_code), [])

    @property
    def unanswered_callbacks(self) -> list[str]:
        """Callback query ids pushed to the bot that it has not answered yet."""
        return sorted(self._callback_queries - self.answered_callbacks)

    # -- looking at calls ----------------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def sent_to(self, chat_id: int | str) -> list[Call]:
        """Every call addressed to a chat."""
        return [c for c in self.calls if c.method != "getUpdates" and c.chat_id == chat_id]

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 15.0) -> Call:
        """The first recorded call (whole history) that matches, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while (found := self._first(predicate)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching Telegram call within {timeout} s; last calls:\n{self.dump()}")
            await self._calls_signal.wait(remaining)
        return found

    async def wait_for_method(
        self, method: str, chat_id: int | str | None = None, timeout: float = 15.0, **param_equals: Any
    ) -> Call:
        """The first call of `method` (to `chat_id`, with these parameter values), waiting for it if need be."""

        def matches(call: Call) -> bool:
            return (
                call.method == method
                and (chat_id is None or call.chat_id == chat_id)
                and all(call.params.get(key) == value for key, value in param_equals.items())
            )

        return await self.wait_for(matches, timeout)

    async def wait_idle(self, seconds: float, timeout: float = 30.0) -> None:
        """Wait until no call but getUpdates has been in flight or made for `seconds`."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            quiet_left = self._last_activity + seconds - now
            if self._in_flight == 0 and quiet_left <= 0:
                return
            if now >= deadline:
                raise AssertionError(f"the bot kept calling Telegram for {timeout} s; last calls:\n{self.dump()}")
            wait = deadline - now if self._in_flight else min(quiet_left, deadline - now)
            await self._calls_signal.wait(wait)

    async def wait_in_flight(self, method: str, timeout: float = 15.0) -> None:
        """Wait until a call of `method` has arrived and is not answered yet (see delay())."""
        deadline = time.monotonic() + timeout
        while method not in self.methods_in_flight:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {method} call in flight within {timeout} s; last calls:\n{self.dump()}")
            await self._calls_signal.wait(remaining)

    def dump(self, last: int = 10) -> str:
        """The last calls other than getUpdates, one per line."""
        shown = [c for c in self.calls if c.method != "getUpdates"][-last:]
        return "\n".join(f"  {c.summary()}" for c in shown) or "  (none)"

    def _first(self, predicate: Callable[[Call], bool]) -> Call | None:
        for call in self.calls:
            try:
                if predicate(call):
                    return call
            except (LookupError, TypeError, AttributeError):
                continue  # a predicate reading a parameter this call lacks simply does not match
        return None

    # -- feeding updates -----------------------------------------------------------------------

    def push_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates; assigns its update_id."""
        pushed = {"update_id": next(self._update_ids), **{k: v for k, v in update.items() if k != "update_id"}}
        self._check_outgoing("Update", pushed, "pushed update")
        self._remember(pushed)
        self._pending.append(copy.deepcopy(pushed))
        self._updates_signal.fire()
        return pushed

    def private_chat(
        self, user_id: int, first_name: str = "Ann", username: str | None = None, language_code: str = "en"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A user and their private chat with the bot."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat: dict[str, Any] = {"id": user_id, "type": "private", "first_name": first_name}
        if username:
            user["username"] = chat["username"] = username
        user["language_code"] = language_code
        self.users[user_id] = user
        self.chats[user_id] = chat
        return dict(user), dict(chat)

    def group_chat(
        self, chat_id: int, title: str = "Group", is_forum: bool = False, supergroup: bool = True
    ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        if is_forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        return dict(chat)

    def channel_chat(self, chat_id: int, title: str = "Channel", username: str | None = None) -> dict[str, Any]:
        """A channel: its admins may write in groups "as the channel" (a discussion group's linked channel too)."""
        chat: dict[str, Any] = {"id": chat_id, "type": "channel", "title": title}
        if username:
            chat["username"] = username
        self.chats[chat_id] = chat
        return dict(chat)

    def open_topic(
        self,
        user: dict[str, Any],
        forum: dict[str, Any],
        name: str = "Topic",
        icon_color: int = TOPIC_ICON_COLORS[0],
    ) -> dict[str, Any]:
        """`user` creates a topic in a forum supergroup; returns the service message, also pushed to the bot.

        Its message_id is the topic's message_thread_id, and every message later sent in the topic that replies to
        nothing else arrives as a reply to it, as on Telegram (see _store_message).
        """
        if not forum.get("is_forum"):
            raise ValueError(f"chat {forum['id']} is not a forum: make it with group_chat(..., is_forum=True)")
        if icon_color not in TOPIC_ICON_COLORS:
            raise ValueError(f"Telegram allows only these topic icon colours: {TOPIC_ICON_COLORS}")
        self.chats.setdefault(forum["id"], dict(forum))
        message = self._store_message(
            forum, user, {"forum_topic_created": {"name": name, "icon_color": icon_color}}
        )
        message.update(message_thread_id=message["message_id"], is_topic_message=True)
        self.push_update({"message": copy.deepcopy(message)})
        return copy.deepcopy(message)

    def sender_for(self, chat: Mapping[str, Any], sender_chat: Mapping[str, Any]) -> dict[str, Any]:
        """The `from` of a message sent in `chat` on behalf of `sender_chat`: GroupAnonymousBot for an anonymous
        admin of the group itself, Channel_Bot for a channel. Only supergroups have either (a basic group turns
        into one when an admin is made anonymous)."""
        if chat.get("type") != "supergroup":
            raise ValueError(f"only supergroups get messages on a chat's behalf, not {chat}")
        if sender_chat["id"] == chat["id"]:
            return dict(GROUP_ANONYMOUS_BOT)
        if sender_chat.get("type") == "channel":
            return dict(CHANNEL_BOT)
        raise ValueError(
            f"only a group's anonymous admin or a channel writes on a chat's behalf, not {sender_chat}"
        )

    def send_text(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        text: str,
        *,
        reply_to: Mapping[str, Any] | None = None,
        message_thread_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A text message; bot_command and @mention entities are added as Telegram does unless given.

        In a forum topic (`message_thread_id` of a topic opened with open_topic), a text replying to nothing else
        replies to the topic's opening message; a reply to a topic's message stays in that topic.
        """
        content = _text_content(text, entities)
        return self._user_message(user, chat, content, reply_to=reply_to, thread_id=message_thread_id)

    def send_text_as_chat(
        self,
        chat: dict[str, Any],
        sender_chat: dict[str, Any],
        text: str,
        *,
        reply_to: Mapping[str, Any] | None = None,
        message_thread_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A text sent in `chat` on behalf of `sender_chat`: by an anonymous admin when it is the group itself,
        "as the channel" when it is a channel. `from` is then one of Telegram's shared fake accounts."""
        return self._user_message(
            self.sender_for(chat, sender_chat),
            chat,
            _text_content(text, entities),
            reply_to=reply_to,
            thread_id=message_thread_id,
            sender_chat=sender_chat,
        )

    def send_voice(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        duration: int,
        *,
        file_size: int | None = None,
        mime_type: str = "audio/ogg",
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A voice note; `file_size` may claim more than `data` holds (a 25 MB note without 25 MB)."""
        stored = self._store(data, "voice", declared_size=file_size)
        voice = {**_file_ref(stored), "duration": duration, "mime_type": mime_type, "file_size": stored.size}
        return self._user_message(user, chat, {"voice": voice}, reply_to=reply_to)

    def send_audio(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        duration: int,
        *,
        file_name: str = "song.mp3",
        mime_type: str = "audio/mpeg",
        file_size: int | None = None,
        caption: str | None = None,
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        stored = self._store(data, "audio", declared_size=file_size, file_name=file_name)
        audio = {
            **_file_ref(stored),
            "duration": duration,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": stored.size,
        }
        content = {"audio": audio, **_user_caption(caption)}
        return self._user_message(user, chat, content, reply_to=reply_to)

    def send_video_note(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        duration: int,
        *,
        length: int = 240,
        file_size: int | None = None,
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        stored = self._store(data, "video_note", declared_size=file_size)
        note = {**_file_ref(stored), "length": length, "duration": duration, "file_size": stored.size}
        return self._user_message(user, chat, {"video_note": note}, reply_to=reply_to)

    def send_photo(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A photo as Telegram delivers it: a small thumbnail size, then the full size (`data`)."""
        content: dict[str, Any] = {
            "photo": self._photo_sizes(self._store(data, "photo")),
            **_user_caption(caption),
        }
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self._user_message(user, chat, content, reply_to=reply_to)

    def send_document(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        *,
        file_size: int | None = None,
        reply_to: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        stored = self._store(data, "document", declared_size=file_size, file_name=file_name)
        document = {**_file_ref(stored), "file_name": file_name, "mime_type": mime_type, "file_size": stored.size}
        content = {"document": document, **_user_caption(caption)}
        return self._user_message(user, chat, content, reply_to=reply_to)

    def send_sticker(self, user: dict[str, Any], chat: dict[str, Any], emoji: str = "😀") -> dict[str, Any]:
        stored = self._store(_solid_png(_DEFAULT_SIDE, _DEFAULT_SIDE), "sticker")
        sticker = {
            **_file_ref(stored),
            "type": "regular",
            "width": _DEFAULT_SIDE,
            "height": _DEFAULT_SIDE,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": stored.size,
        }
        return self._user_message(user, chat, {"sticker": sticker})

    def send_location(
        self, user: dict[str, Any], chat: dict[str, Any], latitude: float = 52.52, longitude: float = 13.405
    ) -> dict[str, Any]:
        return self._user_message(user, chat, {"location": {"latitude": latitude, "longitude": longitude}})

    def send_contact(
        self, user: dict[str, Any], chat: dict[str, Any], phone_number: str = "+15550100", first_name: str = "Bob"
    ) -> dict[str, Any]:
        return self._user_message(
            user, chat, {"contact": {"phone_number": phone_number, "first_name": first_name}}
        )

    def send_poll(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        question: str = "Tea or coffee?",
        options: Iterable[str] = ("Tea", "Coffee"),
    ) -> dict[str, Any]:
        return self._user_message(user, chat, {"poll": _poll(question, options, is_anonymous=False)})

    def press_button(self, user: dict[str, Any], message: Mapping[str, Any], data: str) -> dict[str, Any]:
        """The callback_query update of `user` pressing the button with callback_data `data` under a bot message."""
        message = _message_of(message)
        current = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        keyboard = current.get("reply_markup", {}).get("inline_keyboard", [])
        offered = [button.get("callback_data") for row in keyboard for button in row]
        if data not in offered:
            raise ValueError(
                f"message {current['message_id']} has no button with callback_data {data!r}: {offered}"
            )
        query_id = str(4_000_000_000_000_000 + next(self._callback_numbers))
        query = {
            "id": query_id,
            "from": dict(user),
            "message": copy.deepcopy(current),
            "chat_instance": str(8_000_000_000 + abs(current["chat"]["id"])),
            "data": data,
        }
        return self.push_update({"callback_query": query})

    def add_file(
        self, data: bytes, declared_size: int | None = None, suffix: str = "", *, folder: str = "documents"
    ) -> tuple[str, str, str]:
        """Store a downloadable file; returns (file_id, file_unique_id, file_path)."""
        stored = self._new_file(data, folder, suffix, declared_size)
        return stored.file_id, stored.file_unique_id, stored.file_path

    # -- HTTP ----------------------------------------------------------------------------------

    async def _route(self, request: web.Request) -> web.StreamResponse:
        if (match := _FILE_PATH.fullmatch(request.path)) and request.method in {"GET", "HEAD"}:
            return self._serve_file(match["token"], match["path"])
        if match := _API_PATH.fullmatch(request.path):
            return await self._api(request, match["token"], match["method"])
        return _json(TelegramError(404, "Not Found").body(), 404)

    def _serve_file(self, token: str, path: str) -> web.StreamResponse:
        stored = self._files_by_path.get(path)
        if token != self.token or stored is None:
            return _json(TelegramError(404, "Not Found").body(), 404)
        self.downloads.append(path)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _api(self, request: web.Request, token: str, method: str) -> web.StreamResponse:
        if token != self.token:
            return _json(TelegramError(401, "Unauthorized").body(), 401)
        name = self.spec.method_name(method) if self.spec else method
        if name is None:
            self.violations.append(f"{method}: no such Bot API method")
            return _json(TelegramError(404, "Not Found").body(), 404)
        polling = name == "getUpdates"
        if polling:
            self.get_updates_calls += 1
        else:
            self._in_flight += 1
            self.methods_in_flight.append(name)
            self._touch()
        try:
            call, problems = await self._read_call(request, name)
            answer = await self._answer(call, problems)
        finally:
            if not polling:
                self._in_flight -= 1
                self.methods_in_flight.remove(name)
                self._touch()
        self.calls.append(call)
        self._calls_signal.fire()
        return answer

    async def _read_call(self, request: web.Request, method: str) -> tuple[Call, list[str]]:
        at = time.monotonic()
        try:
            fields, parts = await _read_params(request)
        except ValueError as error:
            return Call(method, {}, {}, at), [f"can't parse request body: {error}"]
        if self.spec is not None:
            params, problems = self.spec.validate_call(method, fields, parts)
        else:
            params, problems = _coerce_loosely(fields, parts), []
        return Call(method, params, _attached_files(params, parts), at), problems

    async def _answer(self, call: Call, problems: list[str]) -> web.Response:
        if problems:
            self.violations.extend(f"{call.method}: {problem}" for problem in problems)
            return self._refuse(call, _bad_request("; ".join(problems)))
        await self._apply_delay(call.method)
        if (fault := self._take_fault(call)) is not None:
            return self._refuse(call, fault)
        try:
            result = await self._dispatch(call)
        except TelegramError as error:
            return self._refuse(call, error)
        except Exception as error:  # a bug of the double must fail the test, not hang the bot
            log.exception("Telegram double failed on %s", call.method)
            self.violations.append(f"{call.method}: the double itself failed: {error!r}")
            return self._refuse(call, TelegramError(500, "Internal Server Error"))
        if self.spec is not None:
            for problem in self.spec.validate_result(call.method, result):
                self.violations.append(f"{call.method}: the double answered a shape Telegram would not: {problem}")
        call.result = copy.deepcopy(result)
        return _json({"ok": True, "result": result}, 200)

    @staticmethod
    def _refuse(call: Call, error: TelegramError) -> web.Response:
        call.failed, call.error_code, call.description = True, error.error_code, error.description
        return _json(error.body(), error.error_code)

    async def _apply_delay(self, method: str) -> None:
        for pending in self._delays:
            if pending.method.lower() == method.lower() and pending.times > 0:
                pending.times -= 1
                await asyncio.sleep(pending.seconds)
                return

    def _take_fault(self, call: Call) -> TelegramError | None:
        for fault in self._faults:
            if fault.times <= 0 or fault.method.lower() != call.method.lower():
                continue
            if fault.match is None or fault.match(call):
                fault.times -= 1
                return fault.error
        return None

    def _touch(self) -> None:
        self._last_activity = time.monotonic()
        self._calls_signal.fire()

    def _check_outgoing(self, type_name: str, obj: Any, what: str) -> None:
        if self.spec is not None:
            for problem in self.spec.validate_object(type_name, obj):
                self.violations.append(f"{what}: the double built a shape Telegram would not: {problem}")

    # -- methods -------------------------------------------------------------------------------

    async def _dispatch(self, call: Call) -> Any:
        if call.method == "getUpdates":
            return await self._get_updates(call.params)
        handler = self._handlers.get(call.method)
        if handler is not None:
            return handler(call)
        if call.method in _MEDIA_METHODS:
            return self._send_media(call)
        return self._placeholder(call)

    def _handler_table(self) -> dict[str, Callable[[Call], Any]]:
        return {
            "getMe": lambda call: {
                **self.bot_user,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            },
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": lambda call: self.my_commands(
                call.params.get("scope"), call.params.get("language_code", "")
            ),
            "deleteMyCommands": self._delete_my_commands,
            "getFile": self._get_file,
            "sendMessage": lambda call: self._send(call, _formatted(call.params, "text", "entities")),
            "sendMediaGroup": self._send_media_group,
            "sendLocation": lambda call: self._send(
                call, {"location": _pick(call.params, "latitude", "longitude")}
            ),
            "sendContact": lambda call: self._send(
                call, {"contact": _pick(call.params, "phone_number", "first_name", "last_name")}
            ),
            "sendDice": lambda call: self._send(
                call, {"dice": {"emoji": call.params.get("emoji", "🎲"), "value": 1}}
            ),
            "sendPoll": self._send_poll,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageMedia": self._edit_message_media,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
        }

    def _placeholder(self, call: Call) -> Any:
        """The plainest valid answer of any other method, by the type the spec says it returns."""
        if self.spec is None:
            return True
        returns = self.spec.returns[call.method]
        if "Boolean" in returns or "True" in returns:
            return True
        if "Message" in returns and "chat_id" in call.params:
            return self._send(call, {})
        if returns[0] == "MessageId" and "chat_id" in call.params:
            return {"message_id": self._allocate_message_id(self._chat(call.params["chat_id"])["id"])}
        return self.spec.minimal(returns[0])

    async def _get_updates(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_signal.fire()  # a poll still waiting is terminated by this one, as on Telegram
        offset = params.get("offset")
        if isinstance(offset, int) and offset < 0:
            self._pending = self._pending[offset:]
        elif isinstance(offset, int):
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        if params.get("allowed_updates") is not None:
            self._allowed_updates = set(params["allowed_updates"]) or None
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        deadline = time.monotonic() + max(int(params.get("timeout", 0)), 0)
        while True:
            if generation != self._poll_generation:
                raise TelegramError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self.webhook is not None:
                raise TelegramError(409, "Conflict: terminated by setWebhook request")
            batch = [u for u in self._pending if self._wanted(u)][:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._closing:
                return copy.deepcopy(batch)
            await self._updates_signal.wait(remaining)

    def _wanted(self, update: Mapping[str, Any]) -> bool:
        kind = next((key for key in update if key != "update_id"), "")
        return kind not in _OPT_IN_UPDATES if self._allowed_updates is None else kind in self._allowed_updates

    def _set_webhook(self, call: Call) -> bool:
        url = call.params.get("url", "")
        secret = call.params.get("secret_token")
        if url and not url.startswith("https://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", secret):
            raise _bad_request("secret token contains unallowed characters")
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
        if not url:
            self.webhook = None
            return True
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "has_custom_certificate": "certificate" in call.files,
            "max_connections": call.params.get("max_connections", 40),
            "allowed_updates": call.params.get("allowed_updates"),
        }
        self._updates_signal.fire()
        return True

    def _delete_webhook(self, call: Call) -> bool:
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = None
        return True

    def _webhook_info(self, call: Call) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": bool(self.webhook and self.webhook["has_custom_certificate"]),
            "pending_update_count": len(self._pending),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"] is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _set_my_commands(self, call: Call) -> bool:
        key = _commands_key(call.params.get("scope"), call.params.get("language_code", ""))
        self._commands[key] = call.params.get("commands", [])
        return True

    def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(_commands_key(call.params.get("scope"), call.params.get("language_code", "")), None)
        return True

    def _get_file(self, call: Call) -> dict[str, Any]:
        self.get_file_calls += 1
        stored = self.files.get(call.params.get("file_id", ""))
        if stored is None:
            raise _bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return {**_file_ref(stored), "file_size": stored.size, "file_path": stored.file_path}

    def _send_media(self, call: Call) -> dict[str, Any]:
        kind = _MEDIA_METHODS[call.method][0]
        stored = self._resolve_file(call, kind, call.params.get(kind), kind)
        content = self._media_content(kind, stored, call.params)
        return self._send(call, {**content, **_formatted(call.params, "caption", "caption_entities")})

    def _send_media_group(self, call: Call) -> list[dict[str, Any]]:
        group_id = str(13_000_000_000_000_000 + next(self._media_groups))
        sent = []
        for i, item in enumerate(call.params.get("media", [])):
            kind = item.get("type", "")
            if kind not in _MEDIA_BY_KIND:
                raise _bad_request(f"unsupported media type {kind!r} in media[{i}]")
            stored = self._resolve_file(call, f"media[{i}].media", item.get("media"), kind)
            content = {
                **self._media_content(kind, stored, item),
                **_formatted(item, "caption", "caption_entities"),
            }
            sent.append(self._send(call, {**content, "media_group_id": group_id}))
        return sent

    def _send_poll(self, call: Call) -> dict[str, Any]:
        options = [option.get("text", "") for option in call.params.get("options", [])]
        poll = _poll(call.params.get("question", ""), options, is_anonymous=call.params.get("is_anonymous", True))
        return self._send(call, {"poll": poll})

    def _send(self, call: Call, content: Mapping[str, Any]) -> dict[str, Any]:
        """A message from the bot in the call's chat, stored so it can be edited, replied to and pressed."""
        params = call.params
        chat = self._chat(params.get("chat_id"))
        content = dict(content)
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:  # other keyboards are not echoed
            content["reply_markup"] = markup
        message = self._store_message(
            chat,
            self.bot_user,
            content,
            reply_to=self._reply_target(params.get("reply_parameters"), chat),
            thread_id=params.get("message_thread_id"),
        )
        return copy.deepcopy(message)

    def _reply_target(self, reply: Mapping[str, Any] | None, chat: Mapping[str, Any]) -> dict[str, Any] | None:
        if not reply:
            return None
        target_chat = self._chat(reply["chat_id"]) if "chat_id" in reply else chat
        target = self.messages.get((target_chat["id"], reply.get("message_id")))
        if target is None and not reply.get("allow_sending_without_reply"):
            raise _bad_request("message to be replied not found")
        return target

    def _editable(self, call: Call) -> dict[str, Any] | None:
        """The bot's message an edit targets; None for inline messages (Telegram then answers True)."""
        if "inline_message_id" in call.params:
            return None
        chat = self._chat(call.params.get("chat_id"))
        message = self.messages.get((chat["id"], call.params.get("message_id")))
        if message is None:
            raise _bad_request("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise _bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: dict[str, Any], changes: Mapping[str, Any], call: Call) -> dict[str, Any]:
        """Edit a stored message; `changes` maps fields to new values, None removing a field."""
        markup = call.params.get("reply_markup")
        inline = markup if isinstance(markup, dict) and markup.get("inline_keyboard") else None
        changes = {**changes, "reply_markup": inline}
        if all(message.get(key) == value for key, value in changes.items()):
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _edit_message_text(self, call: Call) -> dict[str, Any] | bool:
        message = self._editable(call)
        if message is None:
            return True
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        text = _formatted(call.params, "text", "entities")
        return self._apply_edit(message, {"text": text.get("text"), "entities": text.get("entities")}, call)

    def _edit_message_caption(self, call: Call) -> dict[str, Any] | bool:
        message = self._editable(call)
        if message is None:
            return True
        if not _MEDIA_FIELDS & message.keys():
            raise _bad_request("there is no caption in the message to edit")
        caption = _formatted(call.params, "caption", "caption_entities")
        changes = {"caption": caption.get("caption"), "caption_entities": caption.get("caption_entities")}
        return self._apply_edit(message, changes, call)

    def _edit_message_media(self, call: Call) -> dict[str, Any] | bool:
        message = self._editable(call)
        if message is None:
            return True
        media = call.params.get("media", {})
        kind = media.get("type", "")
        if kind not in _MEDIA_BY_KIND:
            raise _bad_request(f"unsupported media type {kind!r}")
        stored = self._resolve_file(call, "media.media", media.get("media"), kind)
        changes: dict[str, Any] = {
            key: None for key in _MEDIA_FIELDS | {"caption", "caption_entities", "document"}
        }
        changes.update(self._media_content(kind, stored, media))
        changes.update(_formatted(media, "caption", "caption_entities"))
        return self._apply_edit(message, changes, call)

    def _edit_message_reply_markup(self, call: Call) -> dict[str, Any] | bool:
        message = self._editable(call)
        return True if message is None else self._apply_edit(message, {}, call)

    def _delete_message(self, call: Call) -> bool:
        chat = self._chat(call.params.get("chat_id"))
        if self.messages.pop((chat["id"], call.params.get("message_id")), None) is None:
            raise _bad_request("message to delete not found")
        return True

    def _answer_callback_query(self, call: Call) -> bool:
        query_id = call.params.get("callback_query_id")
        if query_id not in self._callback_queries or query_id in self.answered_callbacks:
            raise _bad_request("query is too old and response timeout expired or query ID is invalid")
        self.answered_callbacks.add(query_id)
        return True

    def _get_chat(self, call: Call) -> dict[str, Any]:
        return {
            **self._chat(call.params.get("chat_id")),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _get_chat_member(self, call: Call) -> dict[str, Any]:
        self._chat(call.params.get("chat_id"))
        user_id = call.params.get("user_id")
        if user_id == self.bot_user["id"]:
            user = self.bot_user
        else:
            user = self.users.get(user_id, {"id": user_id, "is_bot": False, "first_name": "User"})
        chat_id = self._chat(call.params.get("chat_id"))["id"]
        if user_id in self.chat_admins.get(chat_id, set()):
            rights = ("can_be_edited is_anonymous can_manage_chat can_delete_messages can_manage_video_chats "
                      "can_restrict_members can_promote_members can_change_info can_invite_users can_post_stories "
                      "can_edit_stories can_delete_stories").split()  # fmt: skip
            return {"status": "administrator", "user": dict(user), **dict.fromkeys(rights, False)}
        return {"status": "member", "user": dict(user)}

    # -- chats, messages and files -------------------------------------------------------------

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        """A chat the bot addresses: as seen in updates, else a private chat (a group for negative ids)."""
        if isinstance(chat_id, str):
            for chat in self.chats.values():
                if f"@{chat.get('username', '')}".lower() == chat_id.lower():
                    return dict(chat)
            raise _bad_request("chat not found")
        if not isinstance(chat_id, int):
            raise _bad_request("chat_id is empty")
        if chat_id not in self.chats:
            if chat_id > 0:
                self.chats[chat_id] = {"id": chat_id, "type": "private"}
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                self.chats[chat_id] = {"id": chat_id, "type": kind, "title": "Group"}
        return dict(self.chats[chat_id])

    def _allocate_message_id(self, chat_id: int) -> int:
        self._next_message_id[chat_id] = self._next_message_id.get(chat_id, 0) + 1
        return self._next_message_id[chat_id]

    def _store_message(
        self,
        chat: Mapping[str, Any],
        sender: Mapping[str, Any],
        content: Mapping[str, Any],
        *,
        reply_to: Mapping[str, Any] | None = None,
        thread_id: int | None = None,
        sender_chat: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._allocate_message_id(chat["id"]),
            "from": dict(sender),
            "chat": dict(chat),
            "date": int(time.time()),
        }
        if sender_chat is not None:
            message["sender_chat"] = dict(sender_chat)
        if thread_id is None and reply_to is not None and reply_to.get("is_topic_message"):
            thread_id = reply_to.get("message_thread_id")  # a reply stays in the topic of what it answers
        if thread_id is not None and reply_to is None and chat.get("is_forum"):
            # Telegram sends a topic's message that answers nothing as an answer to the topic's opening message.
            opener = self.messages.get((chat["id"], thread_id))
            if opener is not None and "forum_topic_created" in opener:
                reply_to = opener
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = {
                k: copy.deepcopy(v) for k, v in reply_to.items() if k != "reply_to_message"
            }
        message.update(copy.deepcopy(dict(content)))
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _user_message(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any],
        content: Mapping[str, Any],
        *,
        reply_to: Mapping[str, Any] | None = None,
        thread_id: int | None = None,
        sender_chat: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.chats.setdefault(chat["id"], dict(chat))
        if sender_chat is not None:
            self.chats.setdefault(sender_chat["id"], dict(sender_chat))
        target = _message_of(reply_to) if reply_to is not None else None
        message = self._store_message(
            chat, user, content, reply_to=target, thread_id=thread_id, sender_chat=sender_chat
        )
        return self.push_update({"message": copy.deepcopy(message)})

    def _remember(self, update: Mapping[str, Any]) -> None:
        """Learn chats, users, messages and callback queries from an update a test pushed."""
        for key in _MESSAGE_UPDATES:
            if isinstance(message := update.get(key), dict) and isinstance(chat := message.get("chat"), dict):
                self.chats.setdefault(chat["id"], dict(chat))
                if isinstance(sender := message.get("from"), dict):
                    self.users.setdefault(sender["id"], dict(sender))
                chat_id, message_id = chat["id"], message.get("message_id", 0)
                self.messages[(chat_id, message_id)] = copy.deepcopy(message)
                self._next_message_id[chat_id] = max(self._next_message_id.get(chat_id, 0), message_id)
        if isinstance(query := update.get("callback_query"), dict):
            self._callback_queries.add(query.get("id", ""))

    def _new_file(self, data: bytes, folder: str, suffix: str, declared_size: int | None) -> StoredFile:
        number = next(self._file_numbers)
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:06d}",
            file_unique_id=f"AgAD{number:06d}",
            file_path=f"{folder}/file_{number}{suffix}",
            data=data,
            size=declared_size if declared_size is not None else len(data),
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store(
        self,
        data: bytes,
        kind: str,
        *,
        declared_size: int | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """Store media of `kind` with what Telegram would learn of it (name, type, image size)."""
        _, folder, default_suffix, default_mime = _MEDIA_BY_KIND[kind]
        suffix = (
            PurePosixPath(file_name).suffix if file_name and PurePosixPath(file_name).suffix else default_suffix
        )
        stored = self._new_file(data, folder, suffix, declared_size)
        stored.meta["mime_type"] = mime_type or default_mime
        if file_name:
            stored.meta["file_name"] = file_name
        if kind in {"photo", "sticker", "video", "animation"}:
            width, height = _image_size(data) or (_DEFAULT_SIDE, _DEFAULT_SIDE)
            stored.meta.update(width=width, height=height)
        return stored

    def _resolve_file(self, call: Call, path: str, reference: Any, kind: str) -> StoredFile:
        """The file a send refers to: an upload (stored anew), a known file_id, or an HTTP URL."""
        if (upload := call.files.get(path)) is not None:
            guessed = mimetypes.guess_type(upload.filename)[0]
            declared = upload.content_type if upload.content_type != "application/octet-stream" else None
            name = upload.filename if kind in {"document", "audio", "video", "animation"} else None
            return self._store(upload.data, kind, file_name=name, mime_type=declared or guessed)
        if isinstance(reference, str) and reference in self.files:
            return self.files[reference]
        if isinstance(reference, str) and reference.startswith(("http://", "https://")):
            return self._store(b"", kind)  # Telegram would fetch it; nothing to download here
        raise _bad_request("wrong file identifier/HTTP URL specified")

    def _media_content(self, kind: str, stored: StoredFile, params: Mapping[str, Any]) -> dict[str, Any]:
        """The Message fields for media of `kind`, as Telegram fills them in."""
        if kind == "photo":
            return {"photo": self._photo_sizes(stored)}
        meta = stored.meta
        media: dict[str, Any] = _file_ref(stored)
        duration = params.get("duration", meta.get("duration", 0))
        match kind:
            case "voice":
                media.update(duration=duration, mime_type="audio/ogg")
            case "audio":
                media.update(duration=duration, **_pick(params, "performer", "title"))
            case "video" | "animation":
                media.update(
                    width=params.get("width", meta.get("width", _DEFAULT_SIDE)),
                    height=params.get("height", meta.get("height", _DEFAULT_SIDE)),
                    duration=duration,
                )
            case "video_note":
                media.update(length=params.get("length", 240), duration=duration)
            case "sticker":
                media.update(
                    type="regular",
                    width=meta.get("width", _DEFAULT_SIDE),
                    height=meta.get("height", _DEFAULT_SIDE),
                    is_animated=False,
                    is_video=False,
                    **_pick(params, "emoji"),
                )
        if kind in {"audio", "document", "video", "animation"}:
            media.update(_pick(meta, "file_name", "mime_type"))
        if stored.size:
            media["file_size"] = stored.size
        if kind == "animation":  # Telegram sends an animation as a document too
            document = {k: v for k, v in media.items() if k not in {"width", "height", "duration"}}
            return {"animation": media, "document": document}
        return {kind: media}

    def _photo_sizes(self, full: StoredFile) -> list[dict[str, Any]]:
        """A thumbnail size (its own small PNG, so a bot taking photo[0] is caught) and the full size."""
        width, height = full.meta.get("width", _DEFAULT_SIDE), full.meta.get("height", _DEFAULT_SIDE)
        thumb_id = full.meta.get("thumbnail_id")
        if thumb_id is None:
            scale = min(1.0, _THUMBNAIL_SIDE / max(width, height))
            thumb_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            thumb = self._new_file(_solid_png(*thumb_size), "photos", ".png", None)
            thumb.meta.update(width=thumb_size[0], height=thumb_size[1])
            full.meta["thumbnail_id"] = thumb_id = thumb.file_id
        thumb = self.files[thumb_id]
        return [
            {
                **_file_ref(thumb),
                "width": thumb.meta["width"],
                "height": thumb.meta["height"],
                "file_size": thumb.size,
            },
            {**_file_ref(full), "width": width, "height": height, "file_size": full.size},
        ]


# -- request parsing -----------------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Fields (query string and body) and file parts of a request; ValueError for an unreadable body."""
    fields: dict[str, Any] = dict(request.query)
    parts: dict[str, UploadedFile] = {}
    if not request.can_read_body:
        return fields, parts
    if request.content_type == "application/json":
        body = json.loads(await request.text())
        if not isinstance(body, dict):
            raise ValueError("the JSON body must be an object")
        fields.update(body)
    elif request.content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                parts[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                fields[key] = value
    return fields, parts


def _coerce_loosely(fields: Mapping[str, Any], parts: Mapping[str, UploadedFile]) -> dict[str, Any]:
    """Without a spec: read ints, bools and JSON from form strings, and name direct uploads attach://."""
    params = {key: value if key in _FREE_TEXT else _loose_value(value) for key, value in fields.items()}
    referenced = {value.removeprefix("attach://") for value in _strings(params) if value.startswith("attach://")}
    for name in parts.keys() - referenced:
        params.setdefault(name, f"attach://{name}")
    return params


def _loose_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value in {"true", "false"}:
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value):
        return float(value)
    if value[:1] in {"{", "["}:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _attached_files(params: Mapping[str, Any], parts: Mapping[str, UploadedFile]) -> dict[str, UploadedFile]:
    """Uploaded parts keyed by the parameter path whose attach:// names them."""
    found: dict[str, UploadedFile] = {}

    def visit(value: Any, path: str) -> None:
        if isinstance(value, str) and value.startswith("attach://"):
            if (part := parts.get(value.removeprefix("attach://"))) is not None:
                found[path] = part
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, f"{path}[{i}]")

    visit(params, "")
    return found


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _json(body: Any, status: int) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


# -- message content -----------------------------------------------------------------------


def _formatted(params: Mapping[str, Any], text_key: str, entities_key: str) -> dict[str, Any]:
    """Message fields for a text or caption: HTML reduced to plain text plus entities, as Telegram stores it."""
    text = params.get(text_key)
    if not isinstance(text, str) or text == "":
        return {}
    if params.get(entities_key):
        return {text_key: text, entities_key: params[entities_key]}
    mode = params.get("parse_mode")
    try:
        plain, entities = parse_entities(text, mode) if mode else (text, [])
    except EntityParseError as error:
        raise _bad_request(str(error)) from None
    return {text_key: plain, entities_key: entities} if entities else {text_key: plain}


def _text_content(text: str, entities: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A typed text's Message fields: the entities given, else those Telegram's clients would attach."""
    content: dict[str, Any] = {"text": text}
    if found := (entities if entities is not None else _auto_entities(text)):
        content["entities"] = found
    return content


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command and mention entities Telegram's clients attach to what a user types."""
    entities = []
    if command := _COMMAND.match(text):
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16_len(command.group())})
    for mention in _MENTION.finditer(text):
        offset = _utf16_len(text[: mention.start()])
        entities.append({"type": "mention", "offset": offset, "length": _utf16_len(mention.group())})
    return entities


def _user_caption(caption: str | None) -> dict[str, Any]:
    if not caption:
        return {}
    entities = _auto_entities(caption)
    return {"caption": caption, "caption_entities": entities} if entities else {"caption": caption}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _message_of(value: Mapping[str, Any]) -> dict[str, Any]:
    """A message dict from a message or from an update carrying one."""
    if "update_id" in value:
        for key in _MESSAGE_UPDATES:
            if key in value:
                return dict(value[key])
        if "callback_query" in value:
            return dict(value["callback_query"]["message"])
        raise ValueError(f"update {value['update_id']} carries no message")
    return dict(value)


def _poll(question: str, options: Iterable[str], *, is_anonymous: bool) -> dict[str, Any]:
    return {
        "id": str(5_000_000_000_000_000_000 + zlib.crc32(question.encode())),
        "question": question,
        "options": [{"persistent_id": str(i), "text": text, "voter_count": 0} for i, text in enumerate(options)],
        "total_voter_count": 0,
        "is_closed": False,
        "is_anonymous": is_anonymous,
        "type": "regular",
        "allows_multiple_answers": False,
        "allows_revoting": False,
        "members_only": False,
    }


def _pick(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: source[key] for key in keys if source.get(key) is not None}


def _file_ref(stored: StoredFile) -> dict[str, Any]:
    return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}


def _commands_key(scope: Mapping[str, Any] | None, language_code: str) -> tuple[str, str]:
    return json.dumps(dict(scope or {"type": "default"}), sort_keys=True), language_code


# -- images --------------------------------------------------------------------------------


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, WebP or JPEG header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in {b"GIF87a", b"GIF89a"} and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill bytes and markers without a length
            i += 1 if marker == 0xFF else 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in {0xC4, 0xC8, 0xCC}:  # start of frame
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _solid_png(width: int, height: int) -> bytes:
    """A small valid grey PNG."""

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
