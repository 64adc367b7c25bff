"""Several real `python -m bot` replicas in webhook mode on one PostgreSQL database, and the test as their load
balancer: each update goes to the replica the test names, as a balancer may spread them in any order."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from testkit.bot_process import BotProcess
from testkit.doubles.gateway import GatewayDouble
from testkit.doubles.telegram_api import TelegramDouble
from tests.e2e.harness import API_KEY, BOT_TOKEN, SHARED_SETTINGS

WEBHOOK_SECRET = "replicas-secret_1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """Replicas sharing `database_url`, all talking to one Telegram double and one gateway double."""

    def __init__(
        self, workdir: Path, telegram: TelegramDouble, gateway: GatewayDouble, database_url: str, size: int = 3
    ) -> None:
        self.telegram = telegram
        self.ports = [free_port() for _ in range(size)]
        self.replicas = [
            BotProcess(
                workdir / f"replica-{number}",
                telegram,
                gateway,
                BOT_TOKEN,
                API_KEY,
                SHARED_SETTINGS
                | {
                    "DATABASE_URL": database_url,
                    "WEBHOOK_URL": "https://bot.example.com/tg/hook",
                    "WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "WEBHOOK_HOST": "127.0.0.1",
                    "WEBHOOK_PORT": str(port),
                },
            )
            for number, port in enumerate(self.ports)
        ]
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        for replica in self.replicas:
            replica.workdir.mkdir(parents=True, exist_ok=True)
            await replica.start(ready_timeout=60)
        self._http = aiohttp.ClientSession()
        for port in self.ports:  # each serves its webhook before any update is sent
            async with self._http.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200, f"replica on {port} is not healthy"

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        for replica in self.replicas:
            if replica.running:
                await replica.stop()

    async def post(self, update: Mapping[str, Any], to: int) -> None:
        """Deliver an update to replica `to`, as Telegram (through the balancer) would."""
        assert self._http is not None
        url = f"http://127.0.0.1:{self.ports[to]}/tg/hook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        async with self._http.post(url, json=dict(update), headers=headers) as answer:
            assert answer.status == 200, f"replica {to} answered the webhook with {answer.status}"

    async def say(self, user: dict[str, Any], chat: dict[str, Any], text: str, to: int) -> dict[str, Any]:
        update = self.telegram.send_text(user, chat, text)
        await self.post(update, to)
        return update

    async def say_everywhere(self, messages: list[tuple[dict[str, Any], dict[str, Any], str, int]]) -> None:
        """Several updates at the same moment, each to its replica."""
        updates = [(self.telegram.send_text(user, chat, text), to) for user, chat, text, to in messages]
        await asyncio.gather(*(self.post(update, to) for update, to in updates))
