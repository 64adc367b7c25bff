"""The benchmark's stage: lean test doubles on 127.0.0.1, the real `python -m bot`, and readings of its /proc."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.bot_process import BotProcess
from testkit.doubles.gateway import GatewayDouble
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import TelegramDouble
from testkit.identities import API_KEY, BOT_TOKEN

# Everyone unlimited: the benchmark measures speed, not the quota rules.
BENCH_SETTINGS = {
    f"QUOTA_{kind}": "-1" for kind in ("CHAT", "VOICE", "VISION", "EDIT", "DRAW", "IMAGINE", "SEARCH")
} | {
    "LOG_LEVEL": "WARNING",  # one INFO line per update would be part of what is measured
    "VOICE_TIMEOUT": "300",
    "CHAT_TIMEOUT": "300",
    "MAX_VOICE_SECONDS": "600",
}
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Stage:
    telegram: TelegramDouble
    gateway: GatewayDouble
    midjourney: MidjourneyDouble
    bot: BotProcess
    startup_seconds: float


@asynccontextmanager
async def stage(**settings: str) -> AsyncIterator[Stage]:
    """Doubles without spec validation or upload decoding (they share the machine with the bot being
    measured), and a bot process with a fresh database."""
    telegram = TelegramDouble(BOT_TOKEN, spec=None)
    gateway = GatewayDouble(API_KEY, spec=None, check_uploads=False)
    midjourney = MidjourneyDouble(gateway, step_seconds=0.2)
    await telegram.start()
    await gateway.start()
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        bot = BotProcess(Path(workdir), telegram, gateway, BOT_TOKEN, API_KEY, BENCH_SETTINGS | settings)
        started = time.monotonic()
        await bot.start(ready_timeout=120)
        try:
            yield Stage(telegram, gateway, midjourney, bot, time.monotonic() - started)
        finally:
            await bot.stop(timeout=60)
            await gateway.stop()
            await telegram.stop()


def cpu_seconds(pid: int) -> float:
    """CPU time of the process and of the children it has waited for (ffmpeg), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_p95(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95
