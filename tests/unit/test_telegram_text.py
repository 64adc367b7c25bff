"""Splitting, shortening and escaping text for Telegram's limits."""

import pytest

from bot.telegram.text import escape, shorten, split_text, utf16_len


def test_short_text_is_one_part() -> None:
    assert split_text("  hello  ") == ["hello"]


def test_split_prefers_paragraphs() -> None:
    paragraph = ("A sentence here. " * 60).strip()  # ~1000 chars
    text = "\n\n".join([paragraph] * 6)
    parts = split_text(text, 4096)
    assert all(len(part) <= 4096 for part in parts)
    assert len(parts) == 2
    assert all(part.endswith("here.") for part in parts)
    assert "\n\n".join(parts) == text


def test_split_falls_back_to_sentences_then_words_then_hard_cut() -> None:
    sentences = "Short one. " * 600
    parts = split_text(sentences, 4096)
    assert [len(part) for part in parts][0] <= 4096
    assert parts[0].endswith("one.")
    words = "word " * 2000
    assert all(part.endswith("word") for part in split_text(words, 4096))
    solid = "x" * 9000
    assert [len(part) for part in split_text(solid, 4096)] == [4096, 4096, 808]


def test_split_counts_utf16_units_like_telegram() -> None:
    parts = split_text("😀" * 3000, 4096)  # each emoji is two UTF-16 units
    assert [utf16_len(part) for part in parts] == [4096, 1904]


def test_cjk_sentences_split_after_full_stop() -> None:
    parts = split_text("你好。" * 2000, 4096)
    assert parts[0].endswith("。")
    assert "".join(parts) == "你好。" * 2000


def test_shorten_keeps_fitting_text_and_cuts_long_text_with_ellipsis() -> None:
    assert shorten("fine", 1024) == "fine"
    long = "Sentence number one is here. " * 100
    short = shorten(long, 1024)
    assert utf16_len(short) <= 1024
    assert short.endswith("here.…")


def test_escape_only_touches_html_specials() -> None:
    assert escape('<b>"Tom" & Jerry</b>') == '&lt;b&gt;"Tom" &amp; Jerry&lt;/b&gt;'


# Halves of an emoji (UTF-16 surrogates) on their own, as a broken model stream can leave them in the text.
_LONE_HALVES = [
    "\ud83d",  # a high half alone
    "\ude00",  # a low half alone
    "\ude00\ud83d",  # both halves, in the wrong order
    "ok \ud83d then \ude00 end",
    "x" * 4095 + "\ud83d" + "y" * 10,  # a half right at the message limit
    ("word \ud83d " * 1500).strip(),  # many, across several parts
]


@pytest.mark.parametrize("text", _LONE_HALVES)
def test_lone_halves_never_break_splitting_or_shortening(text: str) -> None:
    """split_text, shorten and utf16_len take text holding lone surrogates without raising, and what they return
    is valid UTF-8 (what Telegram accepts) and within the limits."""
    assert utf16_len(text) == len(text)  # each lone half is the one UTF-16 unit it is
    for limit in (4096, 1024, 7):
        parts = split_text(text, limit)
        assert parts
        for part in parts:
            part.encode("utf-8")  # raises UnicodeEncodeError on a surrogate
            assert utf16_len(part) <= limit
        short = shorten(text, limit)
        short.encode("utf-8")
        assert utf16_len(short) <= limit


def test_halves_in_the_right_order_become_the_emoji() -> None:
    """Two halves that arrived apart are joined back into the one character; a lone one becomes U+FFFD."""
    assert split_text("hi \ud83d\ude00") == ["hi 😀"]
    assert shorten("hi \ud83d\ude00 and \ud83d") == "hi 😀 and \ufffd"
