"""The voice encoder: PCM in (whole, or piece by piece as an answer streams), a Telegram voice message out."""

from __future__ import annotations

import asyncio
import struct

import pytest

from bot.media.audio import AudioError, VoiceEncoder
from testkit.media import decode_with_ffmpeg, inspect_ogg_opus, make_pcm16, make_wav, wav_from_pcm16


def _encoder() -> VoiceEncoder:
    return VoiceEncoder(asyncio.Semaphore(2), parallel=2)


def _assert_voice(ogg: bytes, seconds: float) -> None:
    info = inspect_ogg_opus(ogg)
    assert (info.channels, info.input_sample_rate) == (1, 48000)
    assert info.duration == pytest.approx(seconds, abs=0.03)
    decoded, rate, channels = decode_with_ffmpeg(ogg)
    assert (rate, channels) == (48000, 1) and decoded == pytest.approx(seconds, abs=0.03)


async def test_pieces_of_any_size_make_one_voice_message_of_the_whole_length() -> None:
    pcm = make_pcm16(3.2, 24000)
    sizes = [1, 7, 4801, 12000, 3, 30001]  # mid-sample cuts, tiny and large pieces
    async with _encoder().streaming(24000) as stream:
        position = 0
        for size in sizes * 20:
            if position >= len(pcm):
                break
            await stream.feed(pcm[position : position + size])
            position += size
        await stream.feed(pcm[position:])
        clip = await stream.finish()
    _assert_voice(clip.ogg, 3.2)
    assert clip.seconds == pytest.approx(3.2) and clip.whole_seconds == 3


async def test_a_stream_without_sound_is_an_audio_error_not_a_crash() -> None:
    async with _encoder().streaming(24000) as stream:
        await stream.feed(b"\x01")  # less than one sample
        with pytest.raises(AudioError):
            await stream.finish()


async def test_a_stream_given_up_midway_lets_go_of_its_encoder() -> None:
    encoder = _encoder()
    for _ in range(3):
        async with encoder.streaming(24000) as stream:
            await stream.feed(make_pcm16(1.0, 24000))  # never finished: a turn cancelled mid-answer
    async with encoder.streaming(24000) as stream:
        await stream.feed(make_pcm16(0.5, 24000))
        _assert_voice((await stream.finish()).ogg, 0.5)


@pytest.mark.parametrize(
    ("rate", "channels", "width"), [(24000, 1, 2), (44100, 2, 2), (16000, 1, 3), (48000, 2, 4), (8000, 6, 2)]
)
async def test_whole_wavs_of_every_pcm_layout_become_mono_48k_voice(rate: int, channels: int, width: int) -> None:
    pcm16 = make_pcm16(1.5, rate, channels)
    if width == 2:
        wav = wav_from_pcm16(pcm16, rate, channels)
    else:
        samples = struct.unpack(f"<{len(pcm16) // 2}h", pcm16)
        wide = b"".join(
            (sample * 256).to_bytes(3, "little", signed=True)
            if width == 3
            else (sample * 65536).to_bytes(4, "little", signed=True)
            for sample in samples
        )
        wav = _wav(wide, rate, channels, width)
    clip = await _encoder().wav_to_voice(wav)
    _assert_voice(clip.ogg, 1.5)


async def test_tts_pcm_becomes_voice_and_empty_speech_is_refused() -> None:
    encoder = _encoder()
    _assert_voice((await encoder.pcm_to_voice(make_pcm16(2.0, 24000), 24000)).ogg, 2.0)
    with pytest.raises(AudioError):
        await encoder.pcm_to_voice(b"\x00", 24000)


async def test_the_same_answer_encodes_the_same_whole_or_streamed() -> None:
    wav = make_wav(2.0, 24000)
    whole = await _encoder().wav_to_voice(wav)
    async with _encoder().streaming(24000) as stream:
        await stream.feed(make_pcm16(2.0, 24000))
        streamed = await stream.finish()
    assert inspect_ogg_opus(whole.ogg).duration == inspect_ogg_opus(streamed.ogg).duration


def _wav(pcm: bytes, rate: int, channels: int, width: int) -> bytes:
    block = channels * width
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, width * 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body
