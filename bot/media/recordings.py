"""How long a recording really is: counted from its Opus packets, or decoded by ffmpeg; never the length the
sender's client declared (a modified client sends an hour labelled as one second)."""

from __future__ import annotations

import asyncio
import os
import re
import struct
import subprocess
import tempfile

# A decoder plays exactly what each Opus packet's first byte (its TOC) says: frames per packet and frame length.
# Frame length in tenths of a millisecond by the TOC's configuration number (RFC 6716, section 3.1).
_SILK_TENTHS = (100, 200, 400, 600)
_HYBRID_TENTHS = (100, 200)
_CELT_TENTHS = (25, 50, 100, 200)
_OGG_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_OUT_TIME = re.compile(rb"out_time_us=(\d+)")
# Seconds ffmpeg may take to read a recording (20 MB at most); a file that takes longer is refused as damaged.
_PROBE_TIMEOUT = 60.0


class UnreadableRecording(Exception):
    """Neither the packets nor ffmpeg make sense of the file."""


def opus_packet_seconds(packet: bytes) -> float:
    """The length of one Opus packet, from its TOC byte (and the frame count byte of code 3 packets)."""
    if not packet:
        return 0.0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        tenths = _SILK_TENTHS[config % 4]
    elif config < 16:
        tenths = _HYBRID_TENTHS[config % 2]
    else:
        tenths = _CELT_TENTHS[config % 4]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            raise UnreadableRecording("code 3 Opus packet without a frame count")
        frames = packet[1] & 0x3F
    return frames * tenths / 10_000


def ogg_opus_seconds(data: bytes, limit: float) -> float | None:
    """Blocking: the playing time of an Ogg/Opus file, summed over its audio packets; None when the file is Ogg
    but not Opus (Vorbis, FLAC: left to ffmpeg). Every logical stream counts, so nothing can hide in a second one.

    The count stops once past `limit`; a file of more packets than `limit` seconds can hold (the shortest is
    2.5 ms) is refused as damaged, so a crafted file cannot keep this loop busy.
    """
    most_packets = int((limit + 1) * 400) + 16
    seconds = 0.0
    packet = bytearray()
    packets_seen: dict[int, int] = {}  # stream serial -> packets so far (the first two are headers)
    position = 0
    while position < len(data):
        if len(data) - position < _OGG_PAGE_HEADER.size:
            raise UnreadableRecording("truncated Ogg page header")
        magic, _version, _flags, _granule, serial, _sequence, _crc, segments = _OGG_PAGE_HEADER.unpack_from(
            data, position
        )
        if magic != b"OggS":
            raise UnreadableRecording("not an Ogg page")
        lacing_start = position + _OGG_PAGE_HEADER.size
        lacing = data[lacing_start : lacing_start + segments]
        body = lacing_start + segments
        if len(lacing) < segments or body + sum(lacing) > len(data):
            raise UnreadableRecording("truncated Ogg page")
        for size in lacing:
            packet += data[body : body + size]
            body += size
            if size == 255:
                continue  # the packet goes on in the next segment
            number = packets_seen.get(serial, 0)
            packets_seen[serial] = number + 1
            if number == 0 and not packet.startswith(b"OpusHead"):
                return None
            if number >= 2:
                seconds += opus_packet_seconds(bytes(packet))
                if seconds > limit:
                    return seconds
                if number > most_packets:
                    raise UnreadableRecording("more Opus packets than any recording of that length holds")
            packet.clear()
        position = body
    if not packets_seen:
        raise UnreadableRecording("no Ogg pages")
    return seconds


def ffmpeg_seconds(ffmpeg: str, data: bytes, suffix: str, limit: float) -> float:
    """Blocking: decode the first audio stream, stopping a second past `limit`, and return how long it played.

    Decoding is the only measure a file cannot lie to; the stop keeps an hour-long file from costing an hour's
    decode. The file goes through a temporary file, since MP4 and M4A need to be seekable.
    """
    handle, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", path, "-map", "0:a:0", "-vn",
            "-t", f"{limit + 1:.3f}", "-f", "null", "-progress", "pipe:1", "-",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=_PROBE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise UnreadableRecording("ffmpeg took too long") from None
    finally:
        os.unlink(path)
    times = _OUT_TIME.findall(done.stdout)
    if done.returncode != 0 or not times:
        raise UnreadableRecording(f"ffmpeg exit {done.returncode}")
    return int(times[-1]) / 1_000_000


class RecordingMeter:
    """Measures recordings off the event loop, sharing the ffmpeg slots with the voice encoder."""

    def __init__(self, ffmpeg: str, slots: asyncio.Semaphore) -> None:
        self._ffmpeg = ffmpeg
        self._slots = slots

    async def seconds(self, data: bytes, extension: str, limit: float) -> float:
        """The recording's real length; past `limit` the count may stop early (it is then above `limit`)."""
        if extension in (".ogg", ".oga", ".opus"):
            counted = await asyncio.to_thread(ogg_opus_seconds, data, limit)
            if counted is not None:
                return counted
        async with self._slots:
            return await asyncio.to_thread(ffmpeg_seconds, self._ffmpeg, data, extension, limit)
