"""Recordings as they come from Telegram: what a voice note, audio file or video note says of itself, checked
before anything is downloaded, then fetched and measured (its real length, not the declared one)."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import Message

from bot.assistant import Recording
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from bot.media.audio import plausible_recording
from bot.media.recordings import RecordingMeter, UnreadableRecording
from bot.telegram.downloads import check_downloadable, download

# Containers Whisper reads, by the extension it recognises them from.
_WHISPER_EXTENSIONS = {".flac", ".mp3", ".mp4", ".mpeg", ".mpga", ".m4a", ".ogg", ".oga", ".wav", ".webm"}
_EXTENSION_BY_MIME = {
    "audio/ogg": ".ogg",
    "audio/opus": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/m4a": ".m4a",
    "audio/aac": ".m4a",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/webm": ".webm",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
}


@dataclass(frozen=True, slots=True)
class IncomingRecording:
    file_id: str
    file_size: int | None
    duration: int
    filename: str
    content_type: str


DAMAGED = Refusal(__("That recording seems to be damaged: I can't play it. Please record it again."))
EMPTY = Refusal(__("That recording is empty. Hold the mic button while you speak, then let go."))


def incoming_recording(message: Message) -> IncomingRecording:
    """The file to download and the name and type to upload it to Whisper under."""
    if message.voice is not None:
        voice = message.voice
        return IncomingRecording(voice.file_id, voice.file_size, voice.duration, "voice.ogg", "audio/ogg")
    if message.video_note is not None:
        note = message.video_note
        return IncomingRecording(note.file_id, note.file_size, note.duration, "video_note.mp4", "video/mp4")
    audio = message.audio
    assert audio is not None
    content_type = (audio.mime_type or "").lower()
    extension = _audio_extension(audio.file_name, content_type)
    return IncomingRecording(
        audio.file_id,
        audio.file_size,
        audio.duration,
        f"audio{extension}",
        content_type or mimetypes.types_map.get(extension, "application/octet-stream"),
    )


def _audio_extension(file_name: str | None, content_type: str) -> str:
    if file_name and "." in file_name:
        extension = "." + file_name.rsplit(".", 1)[1].lower()
        if extension in _WHISPER_EXTENSIONS:
            return extension
    if content_type in _EXTENSION_BY_MIME:
        return _EXTENSION_BY_MIME[content_type]
    raise Refusal(
        __(
            "I can't read this audio format. Please send a voice note, or an mp3, m4a, ogg, wav, flac or webm file."
        )
    )


def check_acceptable(incoming: IncomingRecording, max_seconds: int) -> None:
    """Refuse before downloading what the message itself admits to: over Telegram's 20 MB for bots, or longer than
    the limit. (A client can lie about the length: the download is measured again, see check_real_length.)"""
    check_downloadable(incoming.file_size)
    if incoming.duration <= 0:
        raise EMPTY
    if incoming.duration > max_seconds:
        raise too_long(incoming.duration, max_seconds)


class RecordingIntake:
    """Recordings taken in: what a message admits to checked before the turn, the file fetched and measured in
    it. Handlers ask for it as `recordings`."""

    def __init__(self, bot: Bot, meter: RecordingMeter, max_seconds: int) -> None:
        self._bot = bot
        self._meter = meter
        self._max_seconds = max_seconds

    def accept(self, message: Message) -> IncomingRecording:
        """The message's recording, refused before anything is downloaded or charged when it says itself that it
        is too big, empty or too long, or comes in a format Whisper cannot read."""
        incoming = incoming_recording(message)
        check_acceptable(incoming, self._max_seconds)
        return incoming

    async def fetch(self, incoming: IncomingRecording) -> Recording:
        """Download the recording, then refuse it by the length it really plays for, whatever was declared."""
        data = await download(self._bot, incoming.file_id, incoming.file_size)
        await _check_real_length(self._meter, data, incoming, self._max_seconds)
        return Recording(data=data, filename=incoming.filename, content_type=incoming.content_type)


async def _check_real_length(meter: RecordingMeter, data: bytes, incoming: IncomingRecording, limit: int) -> None:
    extension = "." + incoming.filename.rsplit(".", 1)[-1]
    if not plausible_recording(data, extension):
        raise DAMAGED
    try:
        seconds = await meter.seconds(data, extension, limit)
    except UnreadableRecording:
        raise DAMAGED from None
    if seconds > limit:  # measuring stops soon after the limit: how much longer is not known
        raise Refusal(
            _(
                "That recording is longer than I can listen to at once (at most {limit}). Please send a shorter one."
            ).format(limit=_minutes(limit))
        )
    if seconds <= 0:
        raise EMPTY


def too_long(seconds: int, limit: int) -> Refusal:
    return Refusal(
        _(
            "That recording is {length} long; I can listen to at most {limit} at a time. "
            "Please send a shorter one."
        ).format(length=_minutes(seconds), limit=_minutes(limit))
    )


def _minutes(seconds: int) -> str:
    if seconds < 60:
        return _("{seconds} seconds").format(seconds=seconds)
    minutes, rest = divmod(seconds, 60)
    if rest:
        return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=rest)
    return _("{minutes} min").format(minutes=minutes)
