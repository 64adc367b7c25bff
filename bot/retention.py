"""What the bot keeps, and for how long: old conversations, finished Midjourney tasks with their buttons, the
audit log and stale reservations are pruned at start-up and every hour."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from storage.audit import AuditRepository
from storage.history import HistoryRepository
from storage.midjourney import MidjourneyRepository
from storage.replicas import AlbumRepository
from storage.usage import UsageRepository

log = logging.getLogger(__name__)

FINISHED_TASK_DAYS = 7  # a Midjourney picture's buttons and /seed work this long after it arrived
AUDIT_DAYS = 365
RESERVATION_DAYS = 1  # no request runs for a day: a reservation that old belongs to work that died
ALBUM_DAYS = 1  # album parts kept for replicas to gather an album (handled within a second)
PRUNE_INTERVAL = 3600.0
_DAY = 86400.0


def iso_before(days: float, now: float | None = None) -> str:
    """The UTC timestamp `days` ago, in the form the database stores (2026-12-01T15:37:19.000Z)."""
    moment = dt.datetime.fromtimestamp((now or time.time()) - days * _DAY, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Retention:
    def __init__(
        self,
        history: HistoryRepository,
        tasks: MidjourneyRepository,
        audit: AuditRepository,
        usage: UsageRepository,
        history_days: int,
        albums: AlbumRepository | None = None,
    ) -> None:
        self._albums = albums
        self._history = history
        self._tasks = tasks
        self._audit = audit
        self._usage = usage
        self._history_days = history_days
        self._loop: asyncio.Task[None] | None = None

    async def prune_once(self) -> dict[str, int]:
        now = time.time()
        pruned = {
            "history": await self._history.prune(iso_before(self._history_days, now)),
            "midjourney_tasks": await self._tasks.prune_finished(now - FINISHED_TASK_DAYS * _DAY),
            "audit": await self._audit.prune(iso_before(AUDIT_DAYS, now)),
            "reservations": await self._usage.prune_reservations(iso_before(RESERVATION_DAYS, now)),
            "albums": await self._albums.prune(now - ALBUM_DAYS * _DAY) if self._albums is not None else 0,
        }
        if any(pruned.values()):
            log.info("pruned old records: %s", " ".join(f"{name}={count}" for name, count in pruned.items()))
        return pruned

    def start(self, interval: float = PRUNE_INTERVAL) -> None:
        self._loop = asyncio.create_task(self._run(interval), name="retention")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _run(self, interval: float) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception as error:  # the pruner must outlive one bad round; the next one tries again
                log.warning("pruning old records failed: %s", type(error).__name__)
            await asyncio.sleep(interval)
