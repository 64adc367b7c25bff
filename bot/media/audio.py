"""WAV to Telegram voice (OGG/Opus, mono, 48 kHz) with pydub, off the event loop; ffmpeg discovery."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import struct
import warnings
from dataclasses import dataclass

from bot.core.errors import UserFacingError
from bot.core.i18n import __

with warnings.catch_warnings():
    # pydub warns at import when no ffmpeg is on PATH (we hand it the bundled binary explicitly below),
    # and Python 3.11/3.12 warn that its audioop is deprecated (audioop-lts takes over from 3.13).
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment

# Telegram plays voice notes as Opus; 48 kHz is Opus's native rate, mono is what a voice note is.
VOICE_SAMPLE_RATE = 48000
# Speech from a TTS model is transparent at 32 kbit/s Opus; more only makes the upload bigger.
VOICE_BITRATE = "32k"
# voip: Opus tuned for speech intelligibility. 60 ms frames instead of 20: a stored message has no latency to
# save, and a third as many packets (and Ogg framing) leave the 32 kbit/s for the voice itself (a 5 s answer:
# 20 KB instead of 29 KB, and 10% less encoder time). compression_level stays at libopus's best (10): level 8
# measured no faster here, and lower levels came out slower and duller.
ENCODER_OPTIONS = ["-ac", "1", "-ar", str(VOICE_SAMPLE_RATE), "-application", "voip", "-frame_duration", "60"]

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# A streaming encoder does not know the length up front and writes one of these as the size.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class AudioError(UserFacingError):
    """Audio that cannot be turned into a voice message."""

    user_message = __("Sorry, I could not turn the answer into a voice message.")


@dataclass(frozen=True, slots=True)
class PcmAudio:
    """Raw interleaved PCM samples as read from a WAV file."""

    data: memoryview  # a view into the WAV: the samples are never copied on their way to ffmpeg
    sample_rate: int
    channels: int
    sample_width: int  # bytes per sample

    @property
    def seconds(self) -> float:
        frame_size = self.channels * self.sample_width
        return len(self.data) / frame_size / self.sample_rate


@dataclass(frozen=True, slots=True)
class VoiceClip:
    ogg: bytes
    seconds: float

    @property
    def whole_seconds(self) -> int:
        """The `duration` Telegram shows; never 0 for a clip that has sound."""
        return max(1, round(self.seconds))


def read_wav(wav: bytes) -> PcmAudio:
    """Read a PCM WAV without ffmpeg, trusting the bytes over size fields that streaming encoders leave at 0
    or 0xFFFFFFFF (pydub would read such a file as 0 ms long)."""
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    position = 12
    while position + 8 <= len(wav):
        chunk_id = wav[position : position + 4]
        (size,) = struct.unpack_from("<I", wav, position + 4)
        body_start = position + 8
        if chunk_id == b"fmt ":
            if size < 16 or body_start + 16 > len(wav):
                raise AudioError("truncated fmt chunk")
            audio_format, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", wav, body_start)
            if audio_format == _WAVE_FORMAT_EXTENSIBLE:
                # The real encoding is the first two bytes of the SubFormat GUID, 24 bytes into the chunk.
                if size < 26 or body_start + 26 > len(wav):
                    raise AudioError("truncated extensible fmt chunk")
                (audio_format,) = struct.unpack_from("<H", wav, body_start + 24)
            fmt = (audio_format, channels, sample_rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("data chunk before fmt chunk")
            available = len(wav) - body_start
            length = available if size in _UNKNOWN_SIZES or size > available else size
            return _pcm_from(fmt, memoryview(wav)[body_start : body_start + length])
        position = body_start + size + (size & 1)  # chunks are padded to an even length
    raise AudioError("no data chunk")


def _pcm_from(fmt: tuple[int, int, int, int], data: memoryview) -> PcmAudio:
    audio_format, channels, sample_rate, bits = fmt
    if audio_format != _WAVE_FORMAT_PCM:
        raise AudioError(f"unsupported WAV encoding {audio_format}")
    if bits not in (16, 24, 32) or not 1 <= channels <= 8 or not 8000 <= sample_rate <= 192000:
        raise AudioError("implausible WAV format")
    width = bits // 8
    frame_size = width * channels
    whole = len(data) - len(data) % frame_size  # a cut-off stream may end mid-frame
    if whole == 0:
        raise AudioError("WAV holds no samples")
    return PcmAudio(data=data[:whole], sample_rate=sample_rate, channels=channels, sample_width=width)


def plausible_recording(data: bytes, extension: str) -> bool:
    """Whether the bytes start the way a file of that kind does: damaged uploads are turned away before
    they cost a transcription."""
    if extension in (".ogg", ".oga", ".opus"):
        return data.startswith(b"OggS")
    if extension in (".mp3", ".mpeg", ".mpga"):
        return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    if extension in (".m4a", ".mp4"):
        return data[4:8] == b"ftyp"
    if extension == ".wav":
        return data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    if extension == ".flac":
        return data.startswith(b"fLaC")
    if extension == ".webm":
        return data.startswith(b"\x1a\x45\xdf\xa3")
    return bool(data)


def encoder_parallelism(configured: int) -> int:
    """MAX_PARALLEL_ENCODES, where 0 means one ffmpeg per CPU core."""
    return configured or os.cpu_count() or 1


def find_ffmpeg(configured: str) -> str:
    """The ffmpeg to use: FFMPEG_PATH when set, else the binary bundled in the imageio-ffmpeg wheel."""
    if configured:
        resolved = shutil.which(configured)
        if not resolved:
            raise FileNotFoundError(f"FFMPEG_PATH {configured!r} is not an executable")
        return resolved
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode_voice(pcm: PcmAudio) -> VoiceClip:
    """Blocking: PCM to OGG/Opus mono 48 kHz through pydub's ffmpeg export. Run it in a worker thread."""
    segment = AudioSegment(
        data=pcm.data, sample_width=pcm.sample_width, frame_rate=pcm.sample_rate, channels=pcm.channels
    )
    out = io.BytesIO()
    try:
        segment.export(out, format="ogg", codec="libopus", bitrate=VOICE_BITRATE, parameters=ENCODER_OPTIONS)
    except Exception as error:  # pydub raises CouldntEncodeError with ffmpeg's whole stderr
        raise AudioError(f"ffmpeg could not encode: {type(error).__name__}") from None
    return VoiceClip(ogg=out.getvalue(), seconds=pcm.seconds)


class VoiceEncoder:
    """Converts answers to voice messages in worker threads, a bounded number at a time.

    ffmpeg is CPU-bound: more parallel encodes than cores only adds memory and latency. The admission bounds
    how many answers are held in memory waiting for an encoder (a few per encoder, so none ever idles).
    """

    def __init__(self, ffmpeg: str, slots: asyncio.Semaphore, parallel: int) -> None:
        # pydub reads the converter from a class attribute; this process has one ffmpeg, set once.
        AudioSegment.converter = ffmpeg
        self._slots = slots  # the process's ffmpeg runs at once, shared with the recording meter
        self._admitted = asyncio.Semaphore(parallel * 4)

    def admission(self) -> asyncio.Semaphore:
        """Hold it from taking an answer's audio into memory until its voice clip is made."""
        return self._admitted

    async def wav_to_voice(self, wav: bytes) -> VoiceClip:
        pcm = read_wav(wav)
        async with self._slots:
            return await asyncio.to_thread(encode_voice, pcm)

    async def pcm_to_voice(self, pcm: bytes, rate: int, channels: int = 1, width: int = 2) -> VoiceClip:
        """Raw little-endian PCM (as a TTS model answers) to a voice message."""
        frame = channels * width
        whole = len(pcm) - len(pcm) % frame
        if whole == 0:
            raise AudioError("speech without samples")
        audio = PcmAudio(data=memoryview(pcm)[:whole], sample_rate=rate, channels=channels, sample_width=width)
        async with self._slots:
            return await asyncio.to_thread(encode_voice, audio)
