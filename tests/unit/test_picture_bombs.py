"""Decompression bombs: a small file whose header promises a huge picture is refused with PictureTooLarge by its
header alone, before a pixel is decoded, wherever a picture is opened. "Not decoded" is proven by making every
Pillow decode raise for the length of the call."""

import functools
import io
import struct
import zlib
from collections.abc import Awaitable, Callable

import pytest
from PIL import Image, ImageFile, TiffImagePlugin, WebPImagePlugin

from bot.core.errors import Refusal
from bot.media.images import (
    DEFAULT_MAX_PIXELS,
    EDITABLE_TYPES,
    Picture,
    PictureTooLarge,
    as_telegram_photo,
    check_picture,
    editable,
    fit_for_vision,
    picture_from,
)

# Pillow warns about these pictures when they are opened; the bot filters that warning at import, pytest shows it.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

BOMB_SIDE = 13_000  # 169 megapixels: over MAX_IMAGE_PIXELS, and under twice Pillow's own limit (it only warns)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way Pillow decodes the pixels of a file raises while the test runs."""

    def decode(self: ImageFile.ImageFile, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a {self.format} picture of {self.size[0]}x{self.size[1]} was decoded")

    # ImageFile.load does the decoding for every format; TIFF and WebP have their own.
    for cls in (ImageFile.ImageFile, TiffImagePlugin.TiffImageFile, WebPImagePlugin.WebPImageFile):
        monkeypatch.setattr(cls, "load", decode)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def _png(width: int, height: int) -> bytes:
    """An 8-bit grey PNG of zero pixels, compressed a row at a time so that the test never holds the pixels: a
    13000x13000 one is 169 MB of pixels in about 160 KB of file."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # the filter byte (0, none), then the row's pixels
    idat = b"".join([compressor.compress(row) for _ in range(height)] + [compressor.flush()])
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _tiff(width: int, height: int) -> bytes:
    """A little-endian, uncompressed, 8-bit grey TIFF with one strip of 64 bytes, whatever size it claims."""
    strip = bytes(64)
    entries = [
        (256, 4, width),  # ImageWidth
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: black is zero
        (273, 4, 8 + 2 + 12 * 9 + 4),  # StripOffsets: right after the directory
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, len(strip)),  # StripByteCounts
    ]
    directory = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        field = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)  # SHORT or LONG
        directory += struct.pack("<HHI", tag, kind, 1) + field
    return b"II*\x00" + struct.pack("<I", 8) + directory + struct.pack("<I", 0) + strip


def _pillow(fmt: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (8, 8)).save(out, format=fmt)
    return out.getvalue()


def _jpeg(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    data = bytearray(_pillow("JPEG"))
    frame = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, height, width)
    return bytes(data)


def _gif(width: int, height: int) -> bytes:
    """A small GIF whose logical screen is rewritten to width x height."""
    data = bytearray(_pillow("GIF", "P"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def _bmp(width: int, height: int) -> bytes:
    """A small BMP whose BITMAPINFOHEADER is rewritten to claim width x height."""
    data = bytearray(_pillow("BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


_BUILDERS: dict[str, tuple[Callable[[int, int], bytes], str]] = {
    "png": (_png, "image/png"),
    "jpeg": (_jpeg, "image/jpeg"),
    "gif": (_gif, "image/gif"),
    "bmp": (_bmp, "image/bmp"),
    "tiff": (_tiff, "image/tiff"),
}


def _only_header(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def test_the_small_versions_of_the_bombs_are_real_pictures() -> None:
    """The builders make valid files: at a small size each decodes, so a bomb is refused for its size alone."""
    for name, (build, _mime) in _BUILDERS.items():
        with Image.open(io.BytesIO(build(8, 8))) as image:
            image.load()
            assert (image.format, image.size) == (name.upper(), (8, 8))
    assert picture_from(_tiff(8, 8)).mime == "image/png"  # a TIFF is converted, pixels and all


def test_the_guard_notices_a_decode(no_decoding: None) -> None:
    """The no_decoding fixture does catch a decode: scaling a wide picture for vision decodes it, and fails."""
    with pytest.raises(AssertionError, match="was decoded"):
        fit_for_vision(Picture(_png(3000, 10), "image/png"))


async def _open_in(way: str, data: bytes, mime: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> object:
    """The picture through one of the four ways the bot opens pictures."""
    calls: dict[str, Callable[[], object]] = {
        "picture_from": lambda: picture_from(data, max_pixels),
        "fit_for_vision": lambda: fit_for_vision(Picture(data, mime), max_pixels),
        "as_telegram_photo": lambda: as_telegram_photo(data, max_pixels),
        "editable": lambda: editable(Picture(data, mime), max_pixels),
    }
    result = calls[way]()
    return await result if isinstance(result, Awaitable) else result


_WAYS = ["picture_from", "fit_for_vision", "as_telegram_photo", "editable"]


# editable() passes JPEG, PNG and WebP on as they are (they came through picture_from, which checked them); it
# opens, and so checks, the others.
_BOMB_CASES = [
    (kind, way)
    for kind, (_build, mime) in _BUILDERS.items()
    for way in _WAYS
    if not (way == "editable" and mime in EDITABLE_TYPES)
]


@pytest.mark.parametrize(("kind", "way"), _BOMB_CASES)
async def test_a_bomb_is_refused_by_its_header(kind: str, way: str, no_decoding: None) -> None:
    """A 13000x13000 picture in a small file is PictureTooLarge, named with its size, and never decoded."""
    build, mime = _BUILDERS[kind]
    data = build(BOMB_SIDE, BOMB_SIDE)
    assert len(data) < 400_000
    assert _only_header(data)[1] == (BOMB_SIDE, BOMB_SIDE)
    with pytest.raises(PictureTooLarge) as refused:
        await _open_in(way, data, mime)
    assert f"{BOMB_SIDE}×{BOMB_SIDE}" in str(refused.value.user_message)
    assert isinstance(refused.value, Refusal)  # answered in words, never charged


@pytest.mark.parametrize("way", _WAYS)
async def test_a_bomb_beyond_pillows_own_limit_is_too_large_not_unreadable(way: str, no_decoding: None) -> None:
    """A TIFF claiming 100000x100000 pixels, which Pillow itself refuses to open, is still PictureTooLarge."""
    with pytest.raises(PictureTooLarge):
        await _open_in(way, _tiff(100_000, 100_000), "image/tiff")


def test_a_picture_of_exactly_the_limit_passes_by_its_header(no_decoding: None) -> None:
    """8000x5000 is MAX_IMAGE_PIXELS exactly: taken (header only, nothing decoded)."""
    data = _png(8000, 5000)
    assert 8000 * 5000 == DEFAULT_MAX_PIXELS
    check_picture(data, DEFAULT_MAX_PIXELS)
    assert picture_from(data) == Picture(data, "image/png")
    assert as_telegram_photo(data) is data


def test_a_picture_of_exactly_the_limit_is_scaled_for_vision() -> None:
    """The same picture goes all the way through vision's scaling, decoded."""
    scaled = fit_for_vision(Picture(_png(8000, 5000), "image/png"))
    assert scaled.mime == "image/jpeg"
    assert _only_header(scaled.data) == ("JPEG", (2048, 1280))


@pytest.mark.parametrize("way", _WAYS)
async def test_one_row_more_is_refused(way: str, no_decoding: None) -> None:
    """8000x5001, 8000 pixels over the limit, is refused."""
    if way == "editable":
        data, mime = _gif(8000, 5001), "image/gif"
    else:
        data, mime = _png(8000, 5001), "image/png"
    with pytest.raises(PictureTooLarge):
        await _open_in(way, data, mime)


@pytest.mark.parametrize("way", _WAYS)
async def test_max_pixels_is_honoured(way: str) -> None:
    """A 100x100 picture passes with max_pixels=10000 and is refused with 9999."""
    buffer = io.BytesIO()
    Image.new("P" if way == "editable" else "RGB", (100, 100)).save(buffer, "GIF" if way == "editable" else "PNG")
    data, mime = buffer.getvalue(), "image/gif" if way == "editable" else "image/png"
    assert await _open_in(way, data, mime, max_pixels=10_000) is not None
    with pytest.raises(PictureTooLarge) as refused:
        await _open_in(way, data, mime, max_pixels=9_999)
    assert "100×100" in str(refused.value.user_message)
