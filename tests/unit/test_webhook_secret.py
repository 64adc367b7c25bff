"""The webhook's secret check: whatever a request's header holds (aiohttp hands bytes that are not UTF-8 over as
surrogate escapes), the comparison says yes or no and never raises; only the exact secret says yes."""

import random

import pytest

from bot.telegram.webhook import secret_matches

SECRET = "s3cr3t-Token_42"


def test_only_the_exact_secret_matches() -> None:
    """The secret matches itself and nothing near it."""
    assert secret_matches(SECRET, SECRET)
    near = ["", SECRET[:-1], SECRET + "x", SECRET.lower(), SECRET.upper(), f" {SECRET}", f"{SECRET} ", SECRET * 2]
    assert [given for given in near if secret_matches(given, SECRET)] == []


@pytest.mark.parametrize(
    "given",
    [
        "sécret",
        "ѕ3cr3t-Token_42",  # a Cyrillic s in front: looks the same, is not
        "😀",
        "秘密",
        SECRET + "\u0000",
        (SECRET.encode() + b"\x80").decode("utf-8", "surrogateescape"),
        b"\xff\xfe\xfd".decode("utf-8", "surrogateescape"),
        b"\xed\xa0\xbd".decode("utf-8", "surrogateescape"),  # an encoded surrogate, as aiohttp hands it over
    ],
)
def test_non_ascii_and_escaped_bytes_compare_without_raising(given: str) -> None:
    """Non-ASCII text and surrogate-escaped bytes are simply not the secret."""
    assert secret_matches(given, SECRET) is False


def test_any_bytes_in_the_header_compare_without_raising() -> None:
    """Thousands of random byte strings, decoded the way aiohttp decodes headers, all compare (as no) without
    raising; the secret's own bytes decoded that way match."""
    rng = random.Random(14)
    for _ in range(5000):
        given = rng.randbytes(rng.randint(0, 40)).decode("utf-8", "surrogateescape")
        assert secret_matches(given, SECRET) is (given == SECRET)
    assert secret_matches(SECRET.encode().decode("utf-8", "surrogateescape"), SECRET)


@pytest.mark.parametrize("given", ["\ud83d", "\udc73", SECRET + "\ude00"])
def test_a_lone_surrogate_compares_without_raising(given: str) -> None:
    """Any str at all, a lone UTF-16 half included, is simply not the secret."""
    assert secret_matches(given, SECRET) is False
