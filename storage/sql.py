"""SQLite's SQL as PostgreSQL reads it: the repositories write `?` (or `?1`, `?2` for a value used twice) and
portable SQL; here the parameters become `$1`, `$2`."""

from __future__ import annotations

import functools
import re

# A quoted string, or a parameter outside one.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\?(\d*)")


@functools.lru_cache(maxsize=512)  # the repositories use a few dozen statements, over and over
def to_postgres(sql: str) -> str:
    counter = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0).startswith("'"):
            return match.group(0)
        if match.group(1):
            return "$" + match.group(1)
        counter += 1
        return f"${counter}"

    return _TOKENS.sub(replace, sql)
