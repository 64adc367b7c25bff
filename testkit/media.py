"""Real media for tests (WAV tones, Telegram-like OGG/Opus voice notes, images) and checks that bytes truly decode."""

from __future__ import annotations

import functools
import io
import math
import re
import struct
import subprocess
import sys
import zlib
from array import array
from dataclasses import dataclass

import imageio_ffmpeg

try:  # Pillow is optional: it encodes and decodes images in-process; ffmpeg covers for it otherwise.
    from PIL import Image
except ImportError:  # pragma: no cover - depends on the environment
    Image = None

OPUS_RATE = 48000  # Opus granule positions always count 48 kHz samples, whatever the input rate was.
IMAGE_FORMATS = ("png", "jpeg", "webp")
_AMPLITUDE = 0.3 * 32767  # loud enough to be "audio", far from clipping
_FFMPEG_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "7.1": 8}


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped inside the imageio-ffmpeg package."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(args: list[str], data: bytes, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", *args], input=data, capture_output=True, timeout=timeout, check=False
    )


# --- audio -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)  # doubles answer many calls with the same tone: make it once
def make_pcm16(seconds: float, rate: int = 24000, channels: int = 1, freq: float = 440.0) -> bytes:
    """Little-endian signed 16-bit PCM of a sine tone, channels interleaved."""
    frames = round(seconds * rate)
    step = 2 * math.pi * freq / rate
    mono = array("h", (int(_AMPLITUDE * math.sin(step * i)) for i in range(frames)))
    if channels > 1:
        mono = array("h", (s for s in mono for _ in range(channels)))
    if sys.byteorder == "big":
        mono.byteswap()
    return mono.tobytes()


def wav_from_pcm16(pcm: bytes, rate: int = 24000, channels: int = 1, header: str = "normal") -> bytes:
    """Wrap PCM16 in a RIFF/WAVE header; "zero"/"ffff" fill the RIFF and data sizes as streaming encoders do."""
    if header == "normal":
        riff_size, data_size = 36 + len(pcm), len(pcm)
    elif header == "zero":
        riff_size = data_size = 0
    elif header == "ffff":
        riff_size = data_size = 0xFFFFFFFF
    else:
        raise ValueError(f"unknown WAV header style {header!r}: use normal, zero or ffff")
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
        + pcm
    )


@functools.lru_cache(maxsize=64)
def make_wav(
    seconds: float, rate: int = 24000, channels: int = 1, freq: float = 440.0, header: str = "normal"
) -> bytes:
    """A PCM16 WAV tone; header "zero" or "ffff" writes that value in both the RIFF and the data size."""
    return wav_from_pcm16(make_pcm16(seconds, rate, channels, freq), rate, channels, header)


@functools.lru_cache(maxsize=32)
def make_voice_note(seconds: float, freq: float = 330.0) -> bytes:
    """A real OGG/Opus mono 48 kHz voice note (as Telegram records them), encoded by ffmpeg's libopus."""
    pcm = make_pcm16(seconds, OPUS_RATE, 1, freq)
    result = _ffmpeg(
        [
            "-v",
            "error",
            "-f",
            "s16le",
            "-ar",
            str(OPUS_RATE),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-application",
            "voip",
            "-f",
            "ogg",
            "pipe:1",
        ],
        pcm,
    )
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"ffmpeg could not encode a voice note: {result.stderr.decode(errors='replace')}")
    return result.stdout


@dataclass(frozen=True)
class OggOpusInfo:
    """What an Ogg/Opus stream declares about itself."""

    version: int
    channels: int
    pre_skip: int
    input_sample_rate: int
    output_gain: int
    mapping_family: int
    vendor: str
    pages: int
    audio_packets: int
    last_granule: int
    duration: float  # seconds: (last granule position - pre-skip) / 48000


@dataclass(frozen=True)
class _OggPage:
    flags: int
    granule: int
    serial: int
    sequence: int
    lacing: bytes
    body: bytes


def _ogg_pages(data: bytes) -> list[_OggPage]:
    pages: list[_OggPage] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError(f"no Ogg capture pattern at byte {pos}")
        if len(data) < pos + 27:
            raise ValueError(f"truncated Ogg page header at byte {pos}")
        version, flags, granule, serial, sequence, _crc, segments = struct.unpack_from("<BBqIIIB", data, pos + 4)
        if version != 0:
            raise ValueError(f"unknown Ogg stream structure version {version} at byte {pos}")
        lacing = data[pos + 27 : pos + 27 + segments]
        body_start = pos + 27 + segments
        body = data[body_start : body_start + sum(lacing)]
        if len(lacing) < segments or len(body) < sum(lacing):
            raise ValueError(f"truncated Ogg page at byte {pos}")
        pages.append(_OggPage(flags, granule, serial, sequence, lacing, body))
        pos = body_start + len(body)
    if not pages:
        raise ValueError("no Ogg pages")
    return pages


def _ogg_packets(pages: list[_OggPage]) -> list[bytes]:
    packets: list[bytes] = []
    pending = b""
    for index, page in enumerate(pages):
        continued = bool(page.flags & 0x01)
        if continued != bool(pending):
            raise ValueError(f"Ogg page {index} continuation flag disagrees with the previous page")
        offset = 0
        for size in page.lacing:
            pending += page.body[offset : offset + size]
            offset += size
            if size < 255:  # a lacing value below 255 ends the packet
                packets.append(pending)
                pending = b""
    if pending:
        raise ValueError("the last Ogg packet never ends (truncated stream)")
    return packets


def inspect_ogg_opus(data: bytes) -> OggOpusInfo:
    """Parse Ogg pages and the Opus headers (RFC 7845); raise ValueError for anything that is not Ogg/Opus."""
    pages = _ogg_pages(data)
    serials = {page.serial for page in pages}
    if len(serials) != 1:
        raise ValueError(f"expected one logical stream, found {len(serials)}")
    for before, after in zip(pages, pages[1:], strict=False):
        if after.sequence != before.sequence + 1:
            raise ValueError(f"Ogg page sequence jumps from {before.sequence} to {after.sequence}")
    if not pages[0].flags & 0x02:
        raise ValueError("first Ogg page is not marked beginning-of-stream")
    if not pages[-1].flags & 0x04:
        raise ValueError("last Ogg page is not marked end-of-stream (truncated stream)")
    packets = _ogg_packets(pages)
    if len(packets) < 2 or not packets[0].startswith(b"OpusHead") or len(packets[0]) < 19:
        raise ValueError("the first Ogg packet is not an OpusHead header")
    version, channels, pre_skip, input_rate, gain, family = struct.unpack_from("<BBHIhB", packets[0], 8)
    if version >> 4 != 0:  # RFC 7845: the major version (high nibble) must be 0
        raise ValueError(f"unsupported OpusHead version {version}")
    if channels == 0:
        raise ValueError("OpusHead declares zero channels")
    tags = packets[1]
    if not tags.startswith(b"OpusTags") or len(tags) < 12:
        raise ValueError("the second Ogg packet is not an OpusTags header")
    (vendor_length,) = struct.unpack_from("<I", tags, 8)
    vendor = tags[12 : 12 + vendor_length].decode("utf-8", errors="replace")
    last_granule = pages[-1].granule
    duration = (last_granule - pre_skip) / OPUS_RATE
    if duration < 0:
        raise ValueError(f"last granule position {last_granule} is before the pre-skip {pre_skip}")
    return OggOpusInfo(
        version=version,
        channels=channels,
        pre_skip=pre_skip,
        input_sample_rate=input_rate,
        output_gain=gain,
        mapping_family=family,
        vendor=vendor,
        pages=len(pages),
        audio_packets=len(packets) - 2,
        last_granule=last_granule,
        duration=duration,
    )


def _channel_count(layout: str) -> int:
    match = re.fullmatch(r"(\d+) channels", layout)
    if match:
        return int(match.group(1))
    base = layout.split("(")[0]
    if base not in _FFMPEG_LAYOUTS:
        raise ValueError(f"unknown ffmpeg channel layout {layout!r}")
    return _FFMPEG_LAYOUTS[base]


def decode_with_ffmpeg(data: bytes, fmt: str | None = None) -> tuple[float, int, int]:
    """Decode audio with ffmpeg to raw s16le and return (seconds, sample_rate, channels); ValueError if it cannot."""
    demuxer = ["-f", fmt] if fmt else []
    result = _ffmpeg(
        ["-v", "info", *demuxer, "-i", "pipe:0", "-vn", "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1"], data
    )
    log = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise ValueError(f"ffmpeg could not decode the audio: {log.strip().splitlines()[-1:]}")
    # The output section's stream line describes exactly the samples written to stdout.
    output_section = log.split("Output #0", 1)[-1]
    stream = re.search(r"Audio: pcm_s16le[^,]*, (\d+) Hz, ([^,]+),", output_section)
    if stream is None:
        raise ValueError("ffmpeg produced no audio stream")
    rate, channels = int(stream.group(1)), _channel_count(stream.group(2).strip())
    if not result.stdout:
        raise ValueError("ffmpeg decoded no samples")
    return len(result.stdout) / (2 * channels * rate), rate, channels


# --- images ------------------------------------------------------------------------------------


def make_png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A solid-colour 8-bit RGB PNG, written by hand so the bytes are the same on every machine."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = (b"\x00" + bytes(color) * width) * height  # filter byte 0 (None) before each row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def _zero_rows(row_bytes: int, rows: int) -> bytes:
    """`rows` rows of zero bytes, deflated as they are made: a picture of hundreds of megabytes of pixels becomes a
    few hundred kilobytes without the test ever holding the pixels."""
    deflate = zlib.compressobj(9)
    row = bytes(row_bytes)
    return b"".join(deflate.compress(row) for _ in range(rows)) + deflate.flush()


def make_png_bomb(side: int = 13000) -> bytes:
    """A valid black RGB PNG of side×side pixels (507 MB decoded at 13000) that weighs a few hundred KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    pixels = _zero_rows(1 + 3 * side, side)  # filter byte 0 before each row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def make_tiff_bomb(side: int = 13000) -> bytes:
    """A valid black RGB TIFF of side×side pixels in one Deflate-compressed strip, a few hundred KB on disk."""
    strip = _zero_rows(3 * side, side)
    # Little-endian TIFF: the header, the strip, then one IFD of (tag, type, count, value) entries.
    entries = [
        (256, 4, 1, side),  # ImageWidth
        (257, 4, 1, side),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample (8 for each of the 3 samples: a count of 1 is read as all)
        (259, 3, 1, 8),  # Compression: Adobe Deflate
        (262, 3, 1, 2),  # PhotometricInterpretation: RGB
        (273, 4, 1, 8),  # StripOffsets: right after the header
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, side),  # RowsPerStrip
        (279, 4, 1, len(strip)),  # StripByteCounts
    ]
    ifd_offset = 8 + len(strip) + (len(strip) & 1)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + strip + b"\x00" * (len(strip) & 1) + ifd


def _encode_solid(fmt: str, width: int, height: int, color: tuple[int, int, int]) -> bytes:
    if Image is not None:
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), color).save(buffer, fmt.upper(), quality=90)
        return buffer.getvalue()
    if fmt == "jpeg":
        codec = ["-c:v", "mjpeg", "-pix_fmt", "yuvj444p", "-f", "mjpeg"]
    else:
        codec = ["-c:v", "libwebp", "-f", "webp"]
    result = _ffmpeg(
        [
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-i",
            "pipe:0",
            "-frames:v",
            "1",
            *codec,
            "pipe:1",
        ],
        bytes(color) * (width * height),
    )
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"ffmpeg could not encode {fmt}: {result.stderr.decode(errors='replace')}")
    return result.stdout


def make_jpeg(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A solid-colour JPEG (Pillow when installed, else ffmpeg)."""
    return _encode_solid("jpeg", width, height, color)


def make_webp(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A solid-colour WEBP (Pillow when installed, else ffmpeg)."""
    return _encode_solid("webp", width, height, color)


def _sniff_image(data: bytes) -> tuple[str, int, int]:
    """Format and size from the header alone (used when Pillow is missing; ffmpeg then proves the pixels)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack_from(">II", data, 16)
        return "png", width, height
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 <= len(data):
            if data[pos] != 0xFF:
                break
            marker = data[pos + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                height, width = struct.unpack_from(">HH", data, pos + 5)
                return "jpeg", width, height
            (length,) = struct.unpack_from(">H", data, pos + 2)
            pos += 2 + length
        raise ValueError("JPEG without a frame header")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8 ":
            width, height = struct.unpack_from("<HH", data, 26)
            return "webp", width & 0x3FFF, height & 0x3FFF
        if kind == b"VP8L":
            (bits,) = struct.unpack_from("<I", data, 21)
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind == b"VP8X":
            return "webp", int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ValueError("not a PNG, JPEG or WEBP image")


def image_size(data: bytes) -> tuple[str, int, int]:
    """("png"|"jpeg"|"webp", width, height) after fully decoding the pixels; ValueError for anything else."""
    if Image is not None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                fmt, (width, height) = (image.format or "").lower(), image.size
        except Exception as exc:  # Pillow raises several unrelated types for bad input
            raise ValueError(f"not a decodable image: {exc}") from exc
        if fmt not in IMAGE_FORMATS:
            raise ValueError(f"unsupported image format {fmt!r}")
        return fmt, width, height
    fmt, width, height = _sniff_image(data)
    # -xerror/-err_detect explode: a damaged image must fail rather than be concealed into a full frame.
    result = _ffmpeg(
        [
            "-v",
            "error",
            "-err_detect",
            "explode",
            "-xerror",
            "-i",
            "pipe:0",
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ],
        data,
    )
    if result.returncode != 0 or result.stderr.strip() or len(result.stdout) != width * height * 3:
        raise ValueError(f"not a decodable {fmt}: {result.stderr.decode(errors='replace').strip()}")
    return fmt, width, height


@functools.lru_cache(maxsize=16)
def make_audio_file(seconds: float, fmt: str = "mp3", freq: float = 440.0) -> bytes:
    """A music-player style audio file (mp3, or m4a with AAC) holding a tone, encoded by ffmpeg."""
    codecs = {"mp3": ["-c:a", "libmp3lame", "-f", "mp3"], "m4a": ["-c:a", "aac", "-f", "ipod"]}
    if fmt not in codecs:
        raise ValueError(f"unsupported audio file format {fmt!r}: use mp3 or m4a")
    source = ["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}"]
    # m4a needs a seekable output to write its index, so it goes through a pipe only as fragmented mp4.
    extra = ["-movflags", "frag_keyframe+empty_moov"] if fmt == "m4a" else []
    done = _ffmpeg(["-loglevel", "error", *source, *codecs[fmt], *extra, "pipe:1"], b"")
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"ffmpeg could not make a {fmt} file: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout


@functools.lru_cache(maxsize=4)
def make_video_note(seconds: float, side: int = 240, freq: float = 550.0) -> bytes:
    """A round-video-note style MP4: square H.264 video with an AAC sound track."""
    source = [
        "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
        "-f", "lavfi", "-i", f"color=c=blue:s={side}x{side}:d={seconds}",
    ]  # fmt: skip
    encode = ["-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]
    done = _ffmpeg(
        ["-loglevel", "error", *source, *encode, "-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "pipe:1"],
        b"",
    )
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"ffmpeg could not make a video note: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout
