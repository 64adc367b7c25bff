"""Fitting text into Telegram's limits: split long answers at natural boundaries, shorten captions, escape HTML."""

from __future__ import annotations

import html
import re

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

# Where a cut reads naturally, best first. Telegram counts the limits in UTF-16 code units
# of the text after HTML parsing, so the text is split first and escaped afterwards.
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),  # paragraph
    re.compile(r"\n"),  # line
    re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])"),  # sentence (Latin and CJK punctuation)
    re.compile(r"\s+"),  # word
)


def escape(text: str) -> str:
    """Escape user or model text for parse_mode=HTML, so `<`, `>` and `&` show as typed."""
    return html.escape(text, quote=False)


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf16_len(text: str) -> int:
    # surrogatepass: a lone half of an emoji (from a model's broken stream) counts as the one unit it is.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def valid_text(text: str) -> str:
    """Halves of an emoji that arrived apart joined again; a half with no partner replaced by U+FFFD, since
    Telegram takes only valid UTF-8."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _fitting_prefix(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 code units."""
    if utf16_len(text) <= limit:
        return len(text)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split `text` into parts of at most `limit`, cutting at the best boundary in the second half of a part."""
    parts: list[str] = []
    rest = valid_text(text).strip()
    while rest:
        part, offset = first_part(rest, limit)
        if part:
            parts.append(part)
        rest = rest[offset:].lstrip()
    return parts


def first_part(text: str, limit: int = MESSAGE_LIMIT) -> tuple[str, int]:
    """The first part of `text` that fits, and the offset in `text` where the rest begins (len(text) if none)."""
    fit = _fitting_prefix(text, limit)
    if fit >= len(text):
        return text.strip(), len(text)
    cut = _best_cut(text, fit)
    return text[:cut].strip(), cut


def _best_cut(text: str, fit: int) -> int:
    """Where to end the part: the last natural boundary that leaves the part at least half full."""
    window = text[: fit + 1]  # a boundary right at the limit still counts
    for boundary in _BOUNDARIES:
        starts = [match.start() for match in boundary.finditer(window) if fit // 2 < match.start() <= fit]
        if starts:
            return starts[-1]
    return fit  # one long word: a hard cut


def shorten(text: str, limit: int = CAPTION_LIMIT) -> str:
    """The text if it fits, else its first part cut at a natural boundary, ending with an ellipsis."""
    text = valid_text(text).strip()
    if utf16_len(text) <= limit:
        return text
    return split_text(text, limit - 1)[0] + "…"
