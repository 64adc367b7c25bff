"""What every end-to-end test shares: the run's secrets, the admin, people who never meet, and after-run checks.

A plain module (not conftest.py): pytest imports conftest under its own name, and a second import would mint a
second set of secrets and a second counter of user ids.
"""

from __future__ import annotations

import itertools
import secrets
import sqlite3
from collections.abc import Awaitable, Callable

from tests.doubles.telegram_api import TelegramDouble
from tests.e2e.bot_process import BotProcess

# Random per run, so a leak into logs or messages cannot hide behind a coincidence.
BOT_TOKEN = f"{7000000001}:AAH{secrets.token_urlsafe(24)}"
API_KEY = f"sk-test-{secrets.token_hex(20)}"

ADMIN_ID = 90_001

# The shared process answers gateway faults quickly so fault tests stay short.
SHARED_SETTINGS = {
    "ADMIN_IDS": str(ADMIN_ID),
    "CHAT_TIMEOUT": "4",
    "VOICE_TIMEOUT": "6",
    "GATEWAY_RETRIES": "1",
    "MAX_VOICE_SECONDS": "600",
    "MJ_POLL_INTERVAL": "0.3",
}

Person = tuple[dict, dict]  # (user, private chat)
StartBot = Callable[..., Awaitable[BotProcess]]

_user_ids = itertools.count(100_001)


def new_person(telegram: TelegramDouble, first_name: str = "Ann", language_code: str = "en") -> Person:
    """A user nobody else in the run uses, with their private chat."""
    return telegram.private_chat(next(_user_ids), first_name=first_name, language_code=language_code)


def assert_no_secrets(process: BotProcess, telegram: TelegramDouble | None = None) -> None:
    """Neither secret in the process's whole log, nor in anything it sent to Telegram; and no traceback."""
    log = process.log_text()
    assert BOT_TOKEN not in log and BOT_TOKEN.split(":")[1] not in log, "the bot token reached the log"
    assert API_KEY not in log, "the API key reached the log"
    assert "Traceback" not in log, f"a traceback reached the log:\n{log[-3000:]}"
    if telegram is not None:
        sent = repr([call.params for call in telegram.calls])
        assert BOT_TOKEN.split(":")[1] not in sent and API_KEY not in sent, "a secret was sent to a chat"


def assert_database_intact(process: BotProcess) -> None:
    with sqlite3.connect(process.database_path) as database:
        assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
