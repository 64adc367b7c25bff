"""Splitting, shortening and escaping text for Telegram's limits."""

from bot.telegram_text import escape, shorten, split_text, utf16_len


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
