"""A recording's real length: counted from the Opus packets of an Ogg voice note whatever its granule positions
claim, or decoded by ffmpeg for other formats; bounded work on crafted files; typed errors on damaged ones."""

import asyncio
import struct
import subprocess

import pytest

from bot.media.audio import find_ffmpeg
from bot.media.recordings import RecordingMeter, UnreadableRecording, ffmpeg_seconds, ogg_opus_seconds
from testkit.media import OPUS_RATE, inspect_ogg_opus, make_audio_file, make_voice_note

_PAGE_HEADER = struct.Struct(
    "<4sBBqIIIB"
)  # capture pattern, version, flags, granule, serial, sequence, CRC, segments


def _crc_of_byte(byte: int) -> int:
    crc = byte << 24
    for _ in range(8):
        crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
    return crc & 0xFFFFFFFF


_CRC_TABLE = [_crc_of_byte(byte) for byte in range(256)]


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC32: polynomial 0x04C11DB7, not reflected, initial value 0, no final xor (RFC 3533)."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def _with_crc(page: bytes) -> bytes:
    blank = bytearray(page)
    struct.pack_into("<I", blank, 22, 0)
    struct.pack_into("<I", blank, 22, _ogg_crc(bytes(blank)))
    return bytes(blank)


def _page_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every Ogg page in the file."""
    spans, position = [], 0
    while position < len(data):
        segments = data[position + 26]
        end = position + 27 + segments + sum(data[position + 27 : position + 27 + segments])
        spans.append((position, end))
        position = end
    return spans


def _page(serial: int, sequence: int, packets: list[bytes], granule: int = 0, flags: int = 0) -> bytes:
    """One Ogg page holding whole packets (each laced as 255s and a final value below 255)."""
    lacing = b"".join(b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255]) for packet in packets)
    assert len(lacing) <= 255
    header = _PAGE_HEADER.pack(b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    return _with_crc(header + lacing + b"".join(packets))


def _doctored(note: bytes, claimed_seconds: float, pre_skip: int | None = None) -> bytes:
    """The note with every page's granule position capped to claim `claimed_seconds` (and OpusHead's pre-skip
    rewritten when given), each page's CRC made right again, as a hostile client could send it."""
    claimed_granule = round(claimed_seconds * OPUS_RATE) + inspect_ogg_opus(note).pre_skip
    out = bytearray()
    for index, (start, end) in enumerate(_page_spans(note)):
        page = bytearray(note[start:end])
        fields = _PAGE_HEADER.unpack_from(page)
        if index == 0 and pre_skip is not None:
            struct.pack_into("<H", page, 27 + fields[7] + 10, pre_skip)  # OpusHead's pre-skip, 10 bytes in
        struct.pack_into("<q", page, 6, min(fields[3], claimed_granule))
        out += _with_crc(bytes(page))
    return bytes(out)


def _last_granule(data: bytes) -> int:
    return int(_PAGE_HEADER.unpack_from(data, _page_spans(data)[-1][0])[3])


@pytest.fixture(scope="module")
def note_20s() -> bytes:
    return make_voice_note(20.0)


def test_the_ogg_crc_is_the_one_real_files_carry() -> None:
    """The test's CRC is right: recomputed for every page of a real voice note, it equals the stored one, so a
    doctored note below is a valid Ogg file, not a damaged one."""
    note = make_voice_note(1.0)
    for start, end in _page_spans(note):
        assert _with_crc(note[start:end]) == note[start:end]


@pytest.mark.parametrize("seconds", [1.0, 20.0])
def test_a_voice_note_is_counted_by_its_packets(seconds: float) -> None:
    """A real Ogg/Opus voice note counts its true length, within a few hundredths (the encoder pads the end)."""
    assert ogg_opus_seconds(make_voice_note(seconds), limit=300) == pytest.approx(seconds, abs=0.05)


def test_granule_positions_claiming_one_second_do_not_shorten_twenty(note_20s: bytes) -> None:
    """A 20 s note whose granule positions (and pre-skip) are rewritten to claim 1 s still counts 20 s."""
    doctored = _doctored(note_20s, 1.0)
    assert inspect_ogg_opus(doctored).duration == pytest.approx(1.0)  # what a player trusting granules reads
    assert ogg_opus_seconds(doctored, limit=300) == pytest.approx(20.0, abs=0.05)
    no_time_at_all = _doctored(note_20s, 1.0, pre_skip=65535)  # the pre-skip alone eats the claimed second
    assert _last_granule(no_time_at_all) < 65535
    assert ogg_opus_seconds(no_time_at_all, limit=300) == pytest.approx(20.0, abs=0.05)


def test_the_count_stops_early_past_the_limit(note_20s: bytes) -> None:
    """With a 5 s limit the count stops just past 5 s instead of reading all 20."""
    counted = ogg_opus_seconds(note_20s, limit=5)
    assert 5 < counted < 5.5


def _opus_headers(serial: int) -> bytes:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 0) + struct.pack("<I", 0)
    return _page(serial, 0, [head], flags=0x02) + _page(serial, 1, [tags])


def test_a_file_of_absurdly_many_packets_is_refused() -> None:
    """Thousands of empty packets (no playing time, but work to count) in a file allowed 1 s are refused as
    damaged; the same headers with a few empty packets are 0 s."""
    few = _opus_headers(7) + _page(7, 2, [b""] * 10, flags=0x04)
    assert ogg_opus_seconds(few, limit=1) == 0
    many = _opus_headers(7) + b"".join(_page(7, 2 + n, [b""] * 255) for n in range(20))
    with pytest.raises(UnreadableRecording):
        ogg_opus_seconds(many, limit=1)


def _ffmpeg_ogg(codec: str) -> bytes:
    """A real one-second Ogg file of another codec, made by the bundled ffmpeg."""
    done = subprocess.run(
        [find_ffmpeg(""), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", codec, "-f", "ogg", "-"],
        capture_output=True,
        check=True,
    )
    return done.stdout


def test_ogg_that_is_not_opus_is_left_to_ffmpeg() -> None:
    """Ogg FLAC (made by ffmpeg) and a Vorbis stream are not counted here: None, so ffmpeg measures them."""
    flac = _ffmpeg_ogg("flac")
    assert flac.startswith(b"OggS")
    assert ogg_opus_seconds(flac, limit=300) is None
    vorbis = _page(3, 0, [b"\x01vorbis" + bytes(23)], flags=0x02)
    assert ogg_opus_seconds(vorbis, limit=300) is None


async def test_the_meter_counts_opus_and_decodes_the_rest(note_20s: bytes) -> None:
    """RecordingMeter: a doctored .ogg voice note counts 20 s; an Ogg FLAC falls back to ffmpeg (about 1 s)."""
    meter = RecordingMeter(find_ffmpeg(""), asyncio.Semaphore(1))
    assert await meter.seconds(_doctored(note_20s, 1.0), ".ogg", 300) == pytest.approx(20.0, abs=0.05)
    assert await meter.seconds(_ffmpeg_ogg("flac"), ".ogg", 300) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"OggS", b"OggS" + bytes(100), b"OggS\x00\x02" + b"\xff" * 40, b"not an ogg file at all" * 10],
    ids=["empty", "capture-pattern-only", "zeros", "huge-lacing", "text"],
)
def test_garbage_is_unreadable(garbage: bytes) -> None:
    """Bytes that are no Ogg file raise UnreadableRecording, never anything else."""
    with pytest.raises(UnreadableRecording):
        ogg_opus_seconds(garbage, limit=300)


def test_every_truncation_is_counted_or_unreadable() -> None:
    """A voice note cut at any length inside a page raises UnreadableRecording; cut between pages, it counts
    what it holds, never more than the whole."""
    note = make_voice_note(1.0)
    whole = ogg_opus_seconds(note, limit=300)
    assert whole is not None
    page_ends = {end for _start, end in _page_spans(note)}
    for length in range(len(note)):
        if length in page_ends:
            counted = ogg_opus_seconds(note[:length], limit=300)
            assert counted is not None and 0 <= counted <= whole
        else:
            with pytest.raises(UnreadableRecording):
                ogg_opus_seconds(note[:length], limit=300)


def test_ffmpeg_measures_an_mp3() -> None:
    """A 3 s mp3 (whose frames declare nothing trustworthy) measures 3 s by decoding."""
    assert ffmpeg_seconds(find_ffmpeg(""), make_audio_file(3.0), ".mp3", limit=300) == pytest.approx(3.0, abs=0.05)


def test_ffmpeg_stops_a_second_past_the_limit() -> None:
    """A 10 s mp3 against a 2 s limit is decoded only to 3 s: enough to refuse it, no more."""
    assert ffmpeg_seconds(find_ffmpeg(""), make_audio_file(10.0), ".mp3", limit=2) == pytest.approx(3.0, abs=0.05)


def test_ffmpeg_refuses_garbage() -> None:
    """A file ffmpeg cannot decode is UnreadableRecording."""
    with pytest.raises(UnreadableRecording):
        ffmpeg_seconds(find_ffmpeg(""), b"ID3" + b"\x00" * 512, ".mp3", limit=300)
