"""A streamed answer's pieces put together: an emoji split across two pieces (each half escaped on its own in the
JSON) becomes the one character again, a trailing half waits for its partner, and a half that never gets one is
shown as U+FFFD, so every text shown is valid UTF-8."""

import pytest

from bot.clients.gateway_results import joined, valid_text, whole_characters


def _stream(pieces: list[str]) -> tuple[list[str], str]:
    """What the gateway shows after each piece, and the final text, put together as Gateway.chat_stream does."""
    text, shown = "", []
    for piece in pieces:
        text = joined(text, piece)
        shown.append(valid_text(whole_characters(text)))
    return shown, valid_text(text)


def test_an_emoji_split_across_two_pieces_is_one_character() -> None:
    """The halves of 😀 arriving in two pieces are joined into U+1F600, not left as two surrogates."""
    text = joined("Hi \ud83d", "\ude00!")
    assert text == "Hi 😀!"
    assert len(text) == 5


@pytest.mark.parametrize(
    ("pieces", "shown", "final"),
    [
        (["Hi ", "\ud83d", "\ude00", "!"], ["Hi ", "Hi ", "Hi 😀", "Hi 😀!"], "Hi 😀!"),
        (["a\ud83d", "\ude00b"], ["a", "a😀b"], "a😀b"),
        (["\ud83d", "\ude00\ud83d", "\ude03"], ["", "😀", "😀😃"], "😀😃"),
    ],
)
def test_a_trailing_half_is_held_back_until_its_partner_comes(
    pieces: list[str], shown: list[str], final: str
) -> None:
    """While the second half has not arrived, the text shown stops before the first; nothing shown is ever taken
    back."""
    seen, text = _stream(pieces)
    assert seen == shown
    assert text == final
    assert all(final.startswith(prefix) for prefix in seen)


@pytest.mark.parametrize(
    ("pieces", "final"),
    [
        (["the end \ud83d"], "the end \ufffd"),  # the stream stops after a first half
        (["a\ud83d", "b"], "a\ufffdb"),  # the next piece is not the second half
        (["\ude00x"], "\ufffdx"),  # a second half with no first
        (["\ude00", "\ud83d"], "\ufffd\ufffd"),  # the halves in the wrong order
    ],
)
def test_a_half_without_its_partner_becomes_the_replacement_character(pieces: list[str], final: str) -> None:
    """A half that never meets its other half is U+FFFD in the final text, and no text shown holds a surrogate."""
    seen, text = _stream(pieces)
    assert text == final
    for shown in [*seen, text]:
        shown.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate


def test_whole_text_is_left_alone() -> None:
    """Text without surrogates passes through all three helpers unchanged."""
    text = "Grüße 😀 你好"
    assert joined("", text) == text
    assert whole_characters(text) == text
    assert valid_text(text) == text
