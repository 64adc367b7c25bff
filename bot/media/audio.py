"""Spoken answers to Telegram voice messages, off the event loop: WAVs read without trusting their size fields,
PCM encoded whole or as it streams in (bot.media.opus), a bounded number at a time; ffmpeg discovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.media.opus import AudioError, OpusWriter, encode_pcm, encoder_errors

__all__ = ["AudioError", "PcmAudio", "VoiceClip", "VoiceEncoder", "VoiceStream", "read_wav"]

T = TypeVar("T")

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# A streaming encoder does not know the length up front and writes one of these as the size.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class PcmAudio:
    """Raw interleaved PCM samples as read from a WAV file."""

    data: memoryview  # a view into the WAV: the samples are never copied on their way to the encoder
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


# PCM gathered before each trip to the encoder thread: half a second of a 24 kHz answer. Smaller costs
# more trips; larger leaves more to encode after the stream's last byte.
_STREAM_BATCH_BYTES = 24000


class VoiceStream:
    """One answer encoded while it streams in: `await feed(pcm)` as pieces arrive (it waits while the encoder
    works, which keeps the rest of the answer on the wire), then `await finish()` for the voice clip."""

    def __init__(self, slots: asyncio.Semaphore, sample_rate: int) -> None:
        self._slots = slots
        self._rate = sample_rate
        self._writer: OpusWriter | None = None
        self._buffer = bytearray()
        self._busy: asyncio.Future[object] | None = None

    async def feed(self, pcm: bytes) -> None:
        self._buffer += pcm
        if len(self._buffer) >= _STREAM_BATCH_BYTES:
            batch = bytes(self._buffer)
            self._buffer.clear()
            await self._in_thread(lambda: self._opened().write(batch))

    async def finish(self) -> VoiceClip:
        rest = bytes(self._buffer)
        self._buffer.clear()

        def last() -> tuple[bytes, float]:
            writer = self._opened()
            writer.write(rest)
            return writer.finish()

        ogg, seconds = await self._in_thread(last)
        self._writer = None
        return VoiceClip(ogg=ogg, seconds=seconds)

    async def close(self) -> None:
        """Let go of the writer, once no thread is using it (a turn cancelled mid-answer lands here)."""
        if self._busy is not None:
            await asyncio.wait([self._busy])
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _opened(self) -> OpusWriter:
        if self._writer is None:
            self._writer = OpusWriter(self._rate)
        return self._writer

    async def _in_thread(self, work: Callable[[], T]) -> T:
        """A blocking step on this answer's writer; if the turn is cancelled meanwhile, the step still ends
        before close() lets go of the writer."""
        async with self._slots:
            step = asyncio.ensure_future(asyncio.to_thread(_without_pyav_errors, work))
            self._busy = step
            return await asyncio.shield(step)


def _without_pyav_errors(work: Callable[[], T]) -> T:
    with encoder_errors():
        return work()


class VoiceEncoder:
    """Turns answers into voice messages in worker threads, a bounded number at a time.

    Encoding is CPU-bound: more at once than cores only adds memory and latency (`slots`, shared with the
    recording meter's ffmpeg). The admission bounds the answers being read at once (a whole WAV, or a stream
    with its encoder): enough that no encoder idles, few enough that hundreds arriving together wait on the
    wire, not in memory.
    """

    def __init__(self, slots: asyncio.Semaphore, parallel: int) -> None:
        self._slots = slots
        self._admitted = asyncio.Semaphore(parallel * 8)

    def admission(self) -> asyncio.Semaphore:
        """Hold it from taking an answer's audio into memory until its voice clip is made."""
        return self._admitted

    async def wav_to_voice(self, wav: bytes) -> VoiceClip:
        pcm = read_wav(wav)
        return await self._encoded(pcm)

    async def pcm_to_voice(self, pcm: bytes, rate: int, channels: int = 1, width: int = 2) -> VoiceClip:
        """Raw little-endian PCM (as a TTS model answers) to a voice message."""
        frame = channels * width
        whole = len(pcm) - len(pcm) % frame
        if whole == 0:
            raise AudioError("speech without samples")
        return await self._encoded(PcmAudio(memoryview(pcm)[:whole], rate, channels, width))

    @contextlib.asynccontextmanager
    async def streaming(self, sample_rate: int) -> AsyncIterator[VoiceStream]:
        """An answer encoded as it arrives (16-bit mono PCM at `sample_rate`), within the admission."""
        async with self._admitted:
            stream = VoiceStream(self._slots, sample_rate)
            try:
                yield stream
            finally:
                await stream.close()

    async def _encoded(self, pcm: PcmAudio) -> VoiceClip:
        async with self._slots:
            ogg, seconds = await asyncio.to_thread(
                encode_pcm, pcm.data, pcm.sample_rate, pcm.channels, pcm.sample_width
            )
        return VoiceClip(ogg=ogg, seconds=seconds)
