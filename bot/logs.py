"""Logging set-up: one line per record, with the bot token and the API key masked wherever they appear."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

_MASK = "***"


class RedactingFormatter(logging.Formatter):
    """Masks secrets in the whole formatted record, tracebacks included.

    The bot token is part of every Bot API URL, so a network error from aiohttp could carry it.
    """

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        # Longest first, so that a secret containing another is masked whole.
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request lines from the HTTP libraries say nothing a turn's own log line does not.
    for noisy in ("httpx", "httpcore", "openai", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
