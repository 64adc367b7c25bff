"""PCM in, a Telegram voice message (OGG/Opus, mono, 48 kHz) out, piece by piece: libopus in this process through
PyAV. Every method blocks; callers run them in worker threads (PyAV lets go of the GIL while it encodes)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bot.core.errors import UserFacingError
from bot.core.i18n import __

if TYPE_CHECKING:
    import av

# Telegram plays voice notes as Opus; 48 kHz is Opus's native rate, mono is what a voice note is.
VOICE_SAMPLE_RATE = 48000
# Speech from a TTS model is transparent at 32 kbit/s Opus; more only makes the upload bigger.
VOICE_BITRATE = 32000
# voip: Opus tuned for speech intelligibility. 60 ms frames instead of 20: a stored message has no latency to
# save, and a third as many packets (and Ogg framing) leave the 32 kbit/s for the voice itself (a 5 s answer:
# 20 KB instead of 29 KB, and 10% less encoder time). compression_level stays at libopus's best (10).
ENCODER_OPTIONS = {"application": "voip", "frame_duration": "60"}
# The resampler keeps buffers the size of the frames it is given: short frames keep a writer near 250 KB.
_FRAME_SECONDS = 0.05
_SAMPLE_FORMATS = {2: "s16", 4: "s32"}  # 24-bit samples are widened to 32 first


class AudioError(UserFacingError):
    """Audio that cannot be turned into a voice message."""

    user_message = __("Sorry, I could not turn the answer into a voice message.")


class OpusWriter:
    """One voice message being encoded: `write` PCM as it comes (any rate, 1–8 channels, 16/24/32-bit little
    endian, interleaved), then `finish` for the OGG bytes and the length."""

    def __init__(self, sample_rate: int, channels: int = 1, sample_width: int = 2) -> None:
        import av  # imported on first use (and warmed at start-up): 50 ms and 17 MB the first seconds do not need

        if sample_width not in (2, 3, 4) or not 1 <= channels <= 8 or not 8000 <= sample_rate <= 192000:
            raise AudioError("implausible PCM format")
        self._av = av
        self._rate, self._channels, self._width = sample_rate, channels, sample_width
        self._frame_bytes = channels * sample_width
        self._frame_samples = max(1, round(sample_rate * _FRAME_SECONDS))
        self._pending = b""  # bytes short of a whole sample frame, until the next write
        self._samples = 0
        self._out = io.BytesIO()
        self._container: Any = av.open(self._out, mode="w", format="ogg")
        self._stream: Any = self._container.add_stream(
            "libopus", rate=VOICE_SAMPLE_RATE, layout="mono", options=ENCODER_OPTIONS
        )
        self._stream.bit_rate = VOICE_BITRATE
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=VOICE_SAMPLE_RATE)
        self._closed = False

    @property
    def seconds(self) -> float:
        return self._samples / self._rate

    def write(self, pcm: bytes | memoryview) -> None:
        data = self._pending + bytes(pcm) if self._pending else pcm
        whole = len(data) - len(data) % self._frame_bytes
        self._pending = bytes(data[whole:])
        step = self._frame_samples * self._frame_bytes
        for start in range(0, whole, step):
            self._encode(self._frame(data[start : min(start + step, whole)]))

    def finish(self) -> tuple[bytes, float]:
        """The OGG/Opus bytes and the seconds of sound; the writer is spent."""
        if self._samples == 0:
            self.close()
            raise AudioError("no samples to encode")
        self._encode(None)
        self._mux(self._stream.encode(None))
        self.close()
        return self._out.getvalue(), self.seconds

    def close(self) -> None:
        """Let go of the writer, finished or not (a turn cancelled mid-answer); once is enough."""
        if not self._closed:
            self._closed = True
            self._container.close()

    def _frame(self, data: bytes | memoryview) -> av.AudioFrame:
        samples = len(data) // self._frame_bytes
        if self._width == 3:
            data = _widen_24_to_32(data)
        frame = self._av.AudioFrame(
            format=_SAMPLE_FORMATS[4 if self._width == 3 else self._width],
            layout=f"{self._channels}c",
            samples=samples,
        )
        frame.planes[0].update(data)
        frame.sample_rate = self._rate
        frame.pts = self._samples
        self._samples += samples
        return frame

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for resampled in self._resampler.resample(frame):
            self._mux(self._stream.encode(resampled))

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            self._container.mux(packet)


def _widen_24_to_32(data: bytes | memoryview) -> bytes:
    """24-bit samples as the top three bytes of 32-bit ones (the same values, scaled): slicing runs in C."""
    source = bytes(data)
    wide = bytearray(len(source) // 3 * 4)
    for byte in range(3):
        wide[byte + 1 :: 4] = source[byte::3]
    return bytes(wide)


@contextlib.contextmanager
def encoder_errors() -> Iterator[None]:
    """PyAV's errors inside the block come out as AudioError: they carry FFmpeg's words, never shown to anyone."""
    try:
        yield
    except AudioError:
        raise
    except Exception as error:
        raise AudioError(f"the encoder failed: {type(error).__name__}") from None


def encode_pcm(
    pcm: bytes | memoryview, sample_rate: int, channels: int = 1, sample_width: int = 2
) -> tuple[bytes, float]:
    """Blocking: a whole answer's PCM to a voice message's bytes and length."""
    with encoder_errors():
        writer = OpusWriter(sample_rate, channels, sample_width)
        try:
            writer.write(pcm)
            return writer.finish()
        except BaseException:
            writer.close()
            raise


def warm_up() -> None:
    """Blocking: import PyAV and load libopus now, at start-up, so the first voice turn does not pay for it."""
    encode_pcm(bytes(960), 24000)
