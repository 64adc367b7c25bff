"""Secrets minted per run, and people who never meet: what the tests and the benchmark give the bot and the
Telegram double.

A plain module (not a conftest.py): pytest imports conftest under its own name, and a second import would mint a
second set of secrets and a second counter of user ids.
"""

from __future__ import annotations

import itertools
import secrets

from testkit.doubles.telegram_api import TelegramDouble

# Random per run, so a leak into logs or messages cannot hide behind a coincidence.
BOT_TOKEN = f"{7000000001}:AAH{secrets.token_urlsafe(24)}"
API_KEY = f"sk-test-{secrets.token_hex(20)}"

Person = tuple[dict, dict]  # (user, private chat)

_user_ids = itertools.count(100_001)


def new_person(telegram: TelegramDouble, first_name: str = "Ann", language_code: str = "en") -> Person:
    """A user nobody else in the run uses, with their private chat."""
    return telegram.private_chat(next(_user_ids), first_name=first_name, language_code=language_code)
