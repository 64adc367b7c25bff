"""Embeddings with a little meaning for the gateway double: a bag of words, so texts sharing words are close."""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

# Words that say nothing about what a text is about; a question ("what is my daughter's name") and the fact it
# asks for ("my daughter is called Mia") then meet on the words that matter.
STOP_WORDS = frozenset(
    """
    a an the is are was were am be been being do does did done have has had having can could will would shall
    should may might must my your our their his her its me you we they he she it him them us i mine yours
    what who whom whose which where when why how that this these those there here
    to of in on at for from by with about as into onto over under than then so too very
    and or but not no nor if else also just
    called call calls name named names
    s t d m ll re ve
    """.split()
)
DIMENSIONS_PER_WORD = 3  # each word lights a few dimensions, so that one collision of two words matters little
# Han characters, kana and CJK compatibility ideographs: Chinese and Japanese are written without spaces, so each
# character counts as a word of its own (a rough but predictable stand-in for a tokenizer).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORDS = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+")
_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s\b")


def words(text: str) -> list[str]:
    """The text's words, lowercased, possessives dropped ("daughter's" is "daughter"), CJK characters one by
    one, stop words left out (all words are kept when every one of them is a stop word)."""
    found = _WORDS.findall(_POSSESSIVE.sub("", text.lower()))
    meaningful = [word for word in found if word not in STOP_WORDS]
    return meaningful or found


def _dimensions(word: str, size: int) -> list[int]:
    chosen: list[int] = []
    salt = 0
    while len(chosen) < min(DIMENSIONS_PER_WORD, size):
        digest = hashlib.sha256(f"{salt}:{word}".encode()).digest()
        dimension = int.from_bytes(digest[:8], "little") % size
        if dimension not in chosen:
            chosen.append(dimension)
        salt += 1
    return chosen


def bag_of_words_vector(text: str, size: int) -> list[float]:
    """A unit vector of `size` dimensions: each word (counted) adds to its few dimensions, all positive. Texts that
    share no word are orthogonal (cosine 0, but for a rare hash collision), texts sharing words are as close as
    the words they share; a text of punctuation alone gets a vector of its own."""
    bag = Counter(words(text)) or Counter([text.strip().lower()])
    vector = [0.0] * size
    for word, count in bag.items():
        for dimension in _dimensions(word, size):
            vector[dimension] += count
    norm = math.sqrt(sum(value * value for value in vector))
    return [round(value / norm, 6) for value in vector]


def cosine(first: list[float], second: list[float]) -> float:
    """The cosine similarity of two vectors (for tests that want to see what the bot would compute)."""
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    norms = math.sqrt(sum(a * a for a in first)) * math.sqrt(sum(b * b for b in second))
    return dot / norms if norms else 0.0
