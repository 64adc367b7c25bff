"""Pictures: types told by their bytes, conversion of other formats, scaling for vision models."""

import io

import pytest
from PIL import Image

from bot.core.errors import Refusal
from bot.media.images import UNREADABLE, Picture, editable, fit_for_vision, picture_from, sniff_mime
from testkit.media import image_size, make_jpeg, make_png, make_webp


def _encoded(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal").save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (make_png(), "image/png"),
        (make_jpeg(), "image/jpeg"),
        (make_webp(), "image/webp"),
        (_encoded("GIF", (8, 8), "P"), "image/gif"),
        (b"%PDF-1.4", None),
        (b"", None),
    ],
)
def test_type_comes_from_the_bytes(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime


def test_other_formats_are_converted_to_png() -> None:
    picture = picture_from(_encoded("BMP", (30, 20)))
    assert picture.mime == "image/png"
    assert image_size(picture.data) == ("png", 30, 20)


def test_garbage_is_refused_in_words() -> None:
    with pytest.raises(Refusal) as refused:
        picture_from(b"definitely not an image")
    assert "JPEG, PNG or WebP" in refused.value.user_message


def test_small_pictures_go_to_vision_untouched() -> None:
    picture = Picture(make_jpeg(1280, 960), "image/jpeg")
    assert fit_for_vision(picture) is picture


def test_large_pictures_are_scaled_to_2048_keeping_their_shape() -> None:
    scaled = fit_for_vision(Picture(_encoded("PNG", (6000, 1500)), "image/png"))
    assert scaled.mime == "image/jpeg"
    assert image_size(scaled.data) == ("jpeg", 2048, 512)


def test_transparency_survives_scaling() -> None:
    scaled = fit_for_vision(Picture(_encoded("PNG", (3000, 3000), "RGBA"), "image/png"))
    assert scaled.mime == "image/png"
    with Image.open(io.BytesIO(scaled.data)) as image:
        assert image.mode == "RGBA" and image.size == (2048, 2048)


async def test_gifs_become_png_for_editing_and_others_pass() -> None:
    gif = Picture(_encoded("GIF", (10, 10), "P"), "image/gif")
    converted = await editable(gif)
    assert converted.mime == "image/png" and image_size(converted.data)[1:] == (10, 10)
    jpeg = Picture(make_jpeg(), "image/jpeg")
    assert await editable(jpeg) is jpeg


def test_data_url_names_the_type() -> None:
    assert Picture(b"abc", "image/webp").data_url() == "data:image/webp;base64,YWJj"


# Formats Pillow can read but the bot does not take: each plugin is code that parses hostile bytes for nothing.
_OTHER_FORMATS = ["ICO", "PCX", "TGA", "PPM", "SGI", "QOI", "DDS", "MSP", "XBM"]


@pytest.mark.parametrize("fmt", _OTHER_FORMATS)
async def test_pictures_in_other_formats_are_refused_as_unreadable(fmt: str) -> None:
    """A file Pillow itself reads, but that is none of JPEG, PNG, WebP, GIF, BMP and TIFF, is refused in words as
    unreadable wherever a picture is opened (it used to be converted to PNG)."""
    data = _encoded(fmt, (16, 16), "1" if fmt in ("MSP", "XBM") else "RGB")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt  # a real file of that format, readable by Pillow
    with pytest.raises(Refusal) as refused:
        picture_from(data)
    assert refused.value is UNREADABLE
    with pytest.raises(Refusal) as refused:
        fit_for_vision(Picture(data, "image/png"))  # whatever the type claimed, the bytes decide
    assert refused.value is UNREADABLE
    with pytest.raises(Refusal) as refused:
        await editable(Picture(data, "image/gif"))
    assert refused.value is UNREADABLE
