"""Logging set-up: one line per record, key=value text or JSON, with the bot token and the API key masked
wherever they appear; and the one line each turn leaves."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

_MASK = "***"
turns = logging.getLogger("bot.turns")


def log_turn(user_id: int, kind: str, outcome: str, started: float, tokens: int = 0) -> None:
    """One line per turn at INFO: who, what, how long, how many tokens, how it ended; never what was said."""
    turns.info(
        "turn",
        extra={
            "fields": {
                "user": user_id,
                "kind": kind,
                "outcome": outcome,
                "duration_ms": round((time.monotonic() - started) * 1000),
                "tokens": tokens,
            }
        },
    )


class _Redacting(logging.Formatter):
    """Masks secrets in the whole formatted record, tracebacks included.

    The bot token is part of every Bot API URL, so a network error from aiohttp could carry it.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self.render(record)
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text

    def render(self, record: logging.LogRecord) -> str:
        raise NotImplementedError


class TextFormatter(_Redacting):
    """`time LEVEL logger: message key=value …`"""

    def render(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(_Redacting):
    """One JSON object per line, for log collectors."""

    def render(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, secrets: Iterable[str], style: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if style == "json" else TextFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = max(logging.WARNING, logging.getLevelName(level))
    # Per-request lines from the HTTP libraries, and aiogram's line per update, say nothing the turn's own line
    # does not (and they would make two lines per turn).
    for noisy in ("httpx", "httpcore", "openai", "aiosqlite", "aiogram.event"):
        logging.getLogger(noisy).setLevel(quiet)
