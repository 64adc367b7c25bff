"""Reading WAV answers, including the size fields streaming encoders leave at 0 or 0xFFFFFFFF."""

import io
import struct
import wave

import pytest

from bot.audio import AudioError, read_wav


def _wav(frames: int, rate: int = 24000, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(bytes(frames * channels * width))
    return buffer.getvalue()


def _with_sizes(wav: bytes, value: int) -> bytes:
    patched = bytearray(wav)
    struct.pack_into("<I", patched, 4, value)  # RIFF size
    struct.pack_into("<I", patched, 40, value)  # data size (the stdlib writes the data chunk at 36)
    return bytes(patched)


@pytest.mark.parametrize("size_field", [None, 0, 0xFFFFFFFF])
def test_length_comes_from_the_bytes_when_sizes_are_unknown(size_field: int | None) -> None:
    wav = _wav(24000 * 3)
    if size_field is not None:
        wav = _with_sizes(wav, size_field)
    pcm = read_wav(wav)
    assert (pcm.sample_rate, pcm.channels, pcm.sample_width) == (24000, 1, 2)
    assert pcm.seconds == pytest.approx(3.0)


def test_stereo_and_24_bit_are_read() -> None:
    pcm = read_wav(_wav(48000, rate=48000, channels=2, width=3))
    assert (pcm.channels, pcm.sample_width) == (2, 3)
    assert pcm.seconds == pytest.approx(1.0)


def test_a_stream_cut_mid_frame_is_trimmed_to_whole_frames() -> None:
    wav = _with_sizes(_wav(1000), 0xFFFFFFFF) + b"\x01"
    assert len(read_wav(wav).data) == 2000


def test_chunks_before_data_are_skipped() -> None:
    wav = _wav(100)
    # Insert a LIST chunk (odd length, so padded) between fmt and data.
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    wav = wav[:36] + extra + wav[36:]
    assert len(read_wav(wav).data) == 200


@pytest.mark.parametrize(
    "data",
    [b"", b"not a wav at all", b"RIFF\x00\x00\x00\x00WAVE", _wav(0)],
    ids=["empty", "text", "no-chunks", "no-samples"],
)
def test_garbage_is_an_audio_error(data: bytes) -> None:
    with pytest.raises(AudioError):
        read_wav(data)


def test_float_samples_are_refused() -> None:
    wav = bytearray(_wav(100))
    struct.pack_into("<H", wav, 20, 3)  # WAVE_FORMAT_IEEE_FLOAT
    with pytest.raises(AudioError):
        read_wav(bytes(wav))
