"""LruCache: a map that never holds more than its capacity, dropping the least recently used key first."""

import pytest

from bot.core.lru import LruCache


def test_it_never_holds_more_than_its_capacity() -> None:
    """However many keys go in, at most `capacity` stay, and they are the latest ones."""
    cache: LruCache[int, str] = LruCache(3)
    for key in range(1000):
        cache.put(key, str(key))
        assert len(cache) == min(key + 1, 3)
    assert [key in cache for key in (996, 997, 998, 999)] == [False, True, True, True]
    assert cache.get(999) == "999"


def test_the_least_recently_used_key_goes_first() -> None:
    """With a, b, c in, putting d drops a (the stalest); putting b again makes it fresh, so e then drops c."""
    cache: LruCache[str, int] = LruCache(3)
    for value, key in enumerate("abc"):
        cache.put(key, value)
    cache.put("d", 3)
    assert "a" not in cache
    cache.put("b", 10)
    cache.put("e", 4)
    assert "c" not in cache
    assert (cache.get("b"), cache.get("d"), cache.get("e")) == (10, 3, 4)


def test_get_makes_a_key_fresh() -> None:
    """Reading a key saves it from the next eviction; a miss changes nothing."""
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now fresher than b
    assert cache.get("missing") is None
    cache.put("c", 3)
    assert "b" not in cache
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_pop_and_a_capacity_below_one() -> None:
    """pop removes a key (None when absent); a cache of no capacity is a mistake, refused."""
    cache: LruCache[str, int] = LruCache(1)
    cache.put("a", 1)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    assert len(cache) == 0
    with pytest.raises(ValueError):
        LruCache(0)
