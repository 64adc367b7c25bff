"""The real bot, `python -m bot`, as a subprocess pointed at the test doubles."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.config import Settings
from testkit.doubles.gateway import GatewayDouble
from testkit.doubles.telegram_api import TelegramDouble

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class BotProcess:
    """Starts, stops and kills one bot process; its output goes to a log file the tests can read."""

    def __init__(
        self,
        workdir: Path,
        telegram: TelegramDouble,
        gateway: GatewayDouble,
        token: str,
        api_key: str,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.telegram = telegram
        self.log_path = workdir / "bot.log"
        self.database_path = workdir / "bot.sqlite3"
        self._process: asyncio.subprocess.Process | None = None
        self._log_file = None
        self.environment = self._environment(token, api_key, telegram, gateway, dict(settings or {}))

    def _environment(
        self, token: str, api_key: str, telegram: TelegramDouble, gateway: GatewayDouble, extra: dict[str, str]
    ) -> dict[str, str]:
        # Nothing of the developer's own bot configuration may leak into the process under test.
        environment = {name: value for name, value in os.environ.items() if name not in Settings.model_fields}
        environment.update(
            BOT_TOKEN=token,
            API_KEY=api_key,
            TELEGRAM_API_URL=telegram.base_url,
            API_BASE_URL=gateway.base_url,
            MJ_BASE_URL=gateway.root_url,
            DATABASE_PATH=str(self.database_path),
            LOG_LEVEL="INFO",
            # The checkout's code, whether or not the package was installed in editable mode.
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        environment.update(extra)
        return environment

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def webhook_mode(self) -> bool:
        return bool(self.environment.get("WEBHOOK_URL"))

    async def start(self, ready_timeout: float = 60.0) -> None:
        """Start the process and wait until it is ready to serve: polling for updates, or (in webhook mode)
        having registered its webhook."""
        polls_before = self.telegram.get_updates_calls
        webhooks_before = len(self.telegram.calls_to("setWebhook"))
        await self.launch()
        deadline = asyncio.get_running_loop().time() + ready_timeout
        while not self._ready(polls_before, webhooks_before):
            if self.exit_code is not None:
                raise AssertionError(f"the bot exited with {self.exit_code}:\n{self.log_text()[-3000:]}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the bot did not start polling:\n{self.log_text()[-3000:]}")
            await asyncio.sleep(0.05)

    async def launch(self) -> None:
        """Start the process and return at once (for tests of what happens before it is ready)."""
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115  # closed in _reap
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=self.workdir,  # no .env of the developer's checkout is read
            env=self.environment,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
        )

    @property
    def exit_code(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self._process is None else self._process.returncode

    async def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end on its own; its exit code."""
        assert self._process is not None
        try:
            return await asyncio.wait_for(self._process.wait(), timeout)
        finally:
            if self._process.returncode is not None:
                self._reap()

    async def wait_for_log(self, text: str, timeout: float = 15.0) -> str:
        """Wait until the log holds `text`; the log so far."""
        deadline = asyncio.get_running_loop().time() + timeout
        while text not in (log := self.log_text()):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{text!r} did not appear in the log:\n{log[-3000:]}")
            await asyncio.sleep(0.05)
        return log

    def terminate(self) -> None:
        """Send SIGTERM and return at once (stop() waits for the exit)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def _ready(self, polls_before: int, webhooks_before: int) -> bool:
        if self.webhook_mode:
            return any(not call.failed for call in self.telegram.calls_to("setWebhook")[webhooks_before:])
        return self.telegram.get_updates_calls > polls_before

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        if self._process is None:
            return 0
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise AssertionError(f"the bot did not stop within {timeout:.0f}s of SIGTERM") from None
        finally:
            self._reap()
        return self._process.returncode

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._reap()

    def _reap(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
