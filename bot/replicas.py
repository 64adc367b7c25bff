"""Several replicas on one PostgreSQL database behave as one process: each has a name, keeps its requests in
flight alive in the database, and hears the others' notices (a /cancel, a ban, a changed setting or model list)
the moment they are given. One process on SQLite needs none of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine
from typing import Any

from bot.admin import BANS, Administration
from bot.inflight import InFlight
from bot.models import MODEL_FAILED, MODEL_LISTS, Models
from bot.preferences import PREFERENCES, Preferences
from storage.database import Database
from storage.replicas import RequestRow, RequestsRepository
from storage.usage import UsageRepository

log = logging.getLogger(__name__)

# Seconds a request's row lives unless its replica pushes it on; pushed every KEEP_ALIVE_EVERY. A replica killed
# mid-request holds its person's place for at most this long.
REQUEST_LIFETIME = 15.0
KEEP_ALIVE_EVERY = 5.0

CANCEL = "cancel"  # payload: the actor's id


class Replica:
    """This process among the replicas: its name, its requests in the shared table, the keep-alive."""

    def __init__(self, database: Database) -> None:
        self.name = secrets.token_hex(6)
        self._database = database
        self._requests = RequestsRepository(database)
        # Its uses in flight, counted against quotas while it lives (see UsageRepository).
        self.usage = UsageRepository(database, self.name, REQUEST_LIFETIME)
        self._dropping: set[asyncio.Task[None]] = set()
        self._keeping: asyncio.Task[None] | None = None

    async def take(self, token: str, actor_id: int, what: str, exclusive: bool) -> bool:
        return await self._requests.take(RequestRow(token, actor_id, what, exclusive, self.name), REQUEST_LIFETIME)

    def drop_soon(self, token: str) -> None:
        """The request's place is let go at once here, and in the table as soon as the statement runs."""
        task = asyncio.get_running_loop().create_task(self._drop(token))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

    async def _drop(self, token: str) -> None:
        try:
            await self._requests.drop(token)
        except Exception as error:  # the row runs out on its own
            log.warning("could not let go of a request in flight: %s", type(error).__name__)

    async def alive_of(self, actor_id: int) -> list[str]:
        return await self._requests.alive_of(actor_id)

    async def cancel_everywhere(self, actor_id: int) -> None:
        await self._database.notify(CANCEL, str(actor_id))

    def start(self) -> None:
        log.info("serving as one of the replicas on the shared database: replica=%s", self.name)
        self._keeping = asyncio.get_running_loop().create_task(self._keep_alive())

    async def stop(self) -> None:
        if self._keeping is not None:
            self._keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeping
        if self._dropping:
            await asyncio.wait(self._dropping)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEP_ALIVE_EVERY)
            try:
                await self._requests.keep_alive(self.name, REQUEST_LIFETIME)
                await self.usage.keep_alive()
            except Exception as error:  # the database is away for a moment: the next round tries again
                log.warning("could not keep this replica's requests alive: %s", type(error).__name__)


class Listening:
    """Wires the replicas' notices to the services that keep something in memory: bans, settings, model lists,
    models found not served, and /cancel."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[None]] = set()

    async def connect(
        self,
        database: Database,
        admin: Administration,
        preferences: Preferences,
        models: Models,
        inflight: InFlight,
    ) -> None:
        admin.changed = preferences.changed = models.changed = database.notify
        await database.listen(BANS, admin.heard)
        await database.listen(PREFERENCES, preferences.heard)
        await database.listen(MODEL_FAILED, models.heard_failure)
        await database.listen(MODEL_LISTS, lambda payload: self._spawn(models.heard_lists(payload)))
        await database.listen(CANCEL, lambda payload: self._cancel(inflight, payload))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @staticmethod
    def _cancel(inflight: InFlight, payload: str) -> None:
        stopped = inflight.cancel(int(payload))
        if stopped is not None:
            log.info("stopped a request of %s: /cancel reached another replica", payload)
