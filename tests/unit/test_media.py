"""Self-tests of testkit/media.py: the generated media are real, and the inspectors refuse what is not."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Callable

import pytest

from testkit import media
from testkit.media import (
    OggOpusInfo,
    decode_with_ffmpeg,
    image_size,
    inspect_ogg_opus,
    make_jpeg,
    make_png,
    make_voice_note,
    make_wav,
    make_webp,
)


@pytest.mark.parametrize(("seconds", "rate", "channels"), [(1.0, 24000, 1), (0.5, 16000, 2), (0.25, 48000, 1)])
def test_make_wav_round_trips_through_the_wave_module(seconds: float, rate: int, channels: int) -> None:
    with wave.open(io.BytesIO(make_wav(seconds, rate, channels))) as wav:
        assert wav.getframerate() == rate
        assert wav.getnchannels() == channels
        assert wav.getsampwidth() == 2
        assert wav.getnframes() == round(seconds * rate)
        assert any(wav.readframes(100))  # a tone, not silence


@pytest.mark.parametrize(("header", "size"), [("zero", 0), ("ffff", 0xFFFFFFFF)])
def test_streaming_style_wav_headers_carry_the_fake_sizes_and_still_decode(header: str, size: int) -> None:
    data = make_wav(1.5, header=header)
    assert struct.unpack_from("<I", data, 4)[0] == size  # RIFF chunk size
    assert data[36:40] == b"data" and struct.unpack_from("<I", data, 40)[0] == size
    assert data[44:] == make_wav(1.5)[44:]
    seconds, rate, channels = decode_with_ffmpeg(data)
    assert (round(seconds, 3), rate, channels) == (1.5, 24000, 1)


def test_make_wav_refuses_an_unknown_header_style() -> None:
    with pytest.raises(ValueError):
        make_wav(0.1, header="broken")


def test_voice_note_is_mono_48k_opus_of_the_requested_length() -> None:
    data = make_voice_note(2.0)
    info = inspect_ogg_opus(data)
    assert isinstance(info, OggOpusInfo)
    assert info.channels == 1
    assert info.input_sample_rate == 48000
    assert info.version == 1
    assert info.audio_packets > 0
    assert abs(info.duration - 2.0) <= 0.06
    seconds, rate, channels = decode_with_ffmpeg(data)
    assert rate == 48000 and channels == 1
    assert abs(seconds - 2.0) <= 0.06
    assert make_voice_note(2.0) is data  # cached by arguments


def test_voice_notes_of_other_lengths_and_tones_differ() -> None:
    short = make_voice_note(0.7, freq=500.0)
    assert abs(inspect_ogg_opus(short).duration - 0.7) <= 0.06
    assert short != make_voice_note(0.7)


def test_inspect_ogg_opus_rejects_what_is_not_a_whole_ogg_opus_stream() -> None:
    voice = make_voice_note(1.0)
    for bad in (make_wav(1.0), b"", voice[: len(voice) // 2], voice[:-1], b"OggS" + b"\x00" * 10):
        with pytest.raises(ValueError):
            inspect_ogg_opus(bad)


def test_inspect_ogg_opus_notices_a_missing_page() -> None:
    voice = make_voice_note(1.0)
    second_page = voice.index(b"OggS", 4)
    third_page = voice.index(b"OggS", second_page + 4)
    with pytest.raises(ValueError, match="sequence"):
        inspect_ogg_opus(voice[:second_page] + voice[third_page:])


def test_decode_with_ffmpeg_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        decode_with_ffmpeg(b"this is not audio at all" * 20)


# Without Pillow, media falls back to ffmpeg: that path is always tested, Pillow's only where it is installed.
_IMAGE_BACKENDS = ["ffmpeg"] + (["pillow"] if media.Image is not None else [])


@pytest.mark.parametrize(("make", "fmt"), [(make_png, "png"), (make_jpeg, "jpeg"), (make_webp, "webp")])
@pytest.mark.parametrize("backend", _IMAGE_BACKENDS)
def test_images_decode_with_the_right_format_and_size(
    make: Callable[..., bytes], fmt: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "ffmpeg":
        monkeypatch.setattr(media, "Image", None)
    data = make(65, 33, (10, 200, 90))
    assert image_size(data) == (fmt, 65, 33)
    for bad in (data[: len(data) // 2], b"not an image", make_wav(0.1)):
        with pytest.raises(ValueError):
            image_size(bad)


def test_png_is_the_same_bytes_everywhere() -> None:
    assert make_png() == make_png(64, 48, (200, 30, 30))
    assert make_png(color=(1, 2, 3)) != make_png()
    assert image_size(make_png()) == ("png", 64, 48)
