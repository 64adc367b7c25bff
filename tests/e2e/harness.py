"""What every end-to-end test shares: the run's secrets and people (from testkit), the admin, the shared
process's settings, and after-run checks."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

from testkit.bot_process import BotProcess
from testkit.doubles.telegram_api import TelegramDouble
from testkit.identities import API_KEY, BOT_TOKEN, Person, new_person

__all__ = ["API_KEY", "BOT_TOKEN", "Person", "new_person"]

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

StartBot = Callable[..., Awaitable[BotProcess]]


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
