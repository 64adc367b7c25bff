"""Reading WAV answers, including the size fields streaming encoders leave at 0 or 0xFFFFFFFF."""

import io
import random
import struct
import wave

import pytest

from bot.media.audio import AudioError, read_wav
from testkit.media import make_wav


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


# --- hostile WAVs: whatever the bytes, read_wav answers with a PcmAudio or an AudioError, never a crash ----------

# KSDATAFORMAT_SUBTYPE_PCM: the GUID whose first two bytes (1) say "PCM" in an extensible fmt chunk.
_PCM_SUBFORMAT = bytes.fromhex("0100000000001000800000aa00389b71")


def _extensible_wav(frames: int, rate: int = 24000) -> bytes:
    """A 16-bit mono WAV whose fmt chunk is WAVE_FORMAT_EXTENSIBLE (0xFFFE): 40 bytes, the encoding in the GUID."""
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, rate, rate * 2, 2, 16, 22, 16, 0x4) + _PCM_SUBFORMAT
    assert len(fmt) == 40
    samples = bytes(frames * 2)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples))
    return b"RIFF" + struct.pack("<I", len(body) + len(samples)) + body + samples


def _crashes(wav: bytes) -> str | None:
    """What read_wav raised other than AudioError, or None when it read the bytes or refused them properly."""
    try:
        read_wav(wav)
    except AudioError:
        return None
    except Exception as error:  # anything else is the failure this test looks for
        return repr(error)
    return None


def test_an_extensible_wav_is_read() -> None:
    """The extensible WAV the tests below cut up is a valid one: its truncations are cuts of a readable file."""
    pcm = read_wav(_extensible_wav(2400))
    assert (pcm.sample_rate, pcm.channels, pcm.sample_width) == (24000, 1, 2)
    assert pcm.seconds == pytest.approx(0.1)


@pytest.mark.parametrize("kind", ["plain", "extensible"])
def test_every_truncation_is_read_or_refused_as_an_audio_error(kind: str) -> None:
    """A WAV cut at any length, including inside the 40 bytes of an extensible fmt chunk, never raises anything
    but AudioError (it used to raise struct.error there)."""
    wav = make_wav(0.02) if kind == "plain" else _extensible_wav(480)
    crashes = {length: crash for length in range(len(wav)) if (crash := _crashes(wav[:length])) is not None}
    assert crashes == {}


def test_random_mutations_are_read_or_refused_as_an_audio_error() -> None:
    """Thousands of randomly damaged WAVs (bytes changed, bytes cut) raise only AudioError."""
    rng = random.Random(20261201)
    sources = [make_wav(0.02), _extensible_wav(480), make_wav(0.02, header="ffff")]
    crashes = []
    for round_ in range(3000):
        wav = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            # Mostly the headers, where the parsing is, and now and then anywhere.
            position = rng.randrange(64) if rng.random() < 0.8 else rng.randrange(len(wav))
            wav[position] = rng.choice((0x00, 0xFF, 0xFE, 0x01, 0x10, 0x28, rng.randrange(256)))
        if rng.random() < 0.3:
            del wav[rng.randrange(len(wav)) :]
        if (crash := _crashes(bytes(wav))) is not None:
            crashes.append((round_, crash))
    assert crashes == []
