"""Which model serves each kind of work, decided by the gateway's catalog and its "model not served" answers,
never by a name alone.

Each kind (chat, vision, audio, …) has a preference list: the settings' (CHAT_MODEL, …), or an admin's /setmodel.
The first model of the list the catalog lists (and has not shut down) is used; when the gateway says a model is
not served, the next one takes over, until the next catalog read or /setmodel, and the admins hear of it once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from bot.clients.catalog import Catalog, CatalogUnavailable
from bot.config import MODEL_KINDS, Settings, split_models
from bot.core.changes import Changed, nobody_else
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from storage.models import ModelListsRepository

log = logging.getLogger(__name__)

CATALOG_UNREADABLE = Refusal(__("I can't read the gateway's list of models right now, so nothing was changed."))
RETIREMENT_WARNING_DAYS = 30


@dataclass(frozen=True, slots=True)
class ListedModel:
    id: str
    listed: bool | None  # None: the catalog could not be read
    shutdown: dt.date | None


@dataclass(frozen=True, slots=True)
class KindReport:
    kind: str
    in_use: str
    models: list[ListedModel]


class ModelNotices(Protocol):
    """How admins hear about models (the Telegram edge sends it to each of them, in private)."""

    async def model_replaced(self, kind: str, failed: str, replacement: str | None) -> None: ...

    async def models_retiring(self, retiring: Sequence[tuple[str, str, dt.date]]) -> None: ...


# The replicas' notices: an admin's new list (payload: the kind), a model found not served ("<kind> <model>").
MODEL_LISTS = "model-lists"
MODEL_FAILED = "model-failed"


class Models:
    def __init__(
        self,
        settings: Settings,
        repository: ModelListsRepository,
        read_catalog: Callable[[], Awaitable[Catalog]],
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self._settings = settings
        self._repo = repository
        self._read_catalog = read_catalog
        self._today = today
        self._lists = {kind: settings.model_list(kind) for kind in MODEL_KINDS}
        self._catalog: Catalog | None = None
        self._in_use: dict[str, str] = {}
        self._failed: dict[str, set[str]] = {kind: set() for kind in MODEL_KINDS}
        self._told: set[str] = set()  # failed models the admins heard of, once per process
        self.notices: ModelNotices | None = None
        self._reading = asyncio.Lock()
        self._settled = asyncio.Event()
        self.changed: Changed = nobody_else
        self._resolve_all()  # usable at once; the catalog refines it when it has been read

    async def load_lists(self) -> None:
        """The lists admins stored with /setmodel, over the settings'."""
        stored = await self._repo.all()
        self._lists.update({kind: models for kind, models in stored.items() if kind in self._lists and models})
        self._resolve_all()

    async def refresh(self) -> bool:
        """Read the catalog again (at start-up and on /models); switches made by fallbacks end here. False when it
        could not be read (the lists then resolve to their first models)."""
        async with self._reading:
            try:
                self._catalog = await self._read_catalog()
            except CatalogUnavailable as error:
                log.warning(
                    "cannot reach the gateway's model list at %s (API_BASE_URL): %s; each kind uses the first "
                    "model of its list until it answers",
                    urlsplit(self._settings.API_BASE_URL).netloc,
                    error,
                )
                self._catalog = None
            self._failed = {kind: set() for kind in MODEL_KINDS}
            self._resolve_all()
            self._settled.set()
            return self._catalog is not None

    async def settled(self) -> None:
        """Until the catalog has been read once (or could not be), or is no longer waited for (`settle`): the bot
        serves before the start-up's read is in, and a call made meanwhile should still use the catalog's pick
        rather than the first model of each list."""
        await self._settled.wait()

    def settle(self) -> None:
        """Calls stop waiting for the catalog: each kind uses the first model of its list until it is in."""
        self._settled.set()

    def current(self, kind: str) -> str:
        return self._in_use[kind]

    def preference(self, kind: str) -> list[str]:
        return list(self._lists[kind])

    def chat_choices(self) -> list[str]:
        """What a person may pick with /model: the chat kind's model in use, then CHAT_MODELS."""
        return list(dict.fromkeys([self._in_use["chat"], *split_models(self._settings.CHAT_MODELS)]))

    def chat_model_for(self, pick: str | None) -> str | None:
        """A person's pick while it is still on offer (else None: the chat kind's model)."""
        return pick if pick is not None and pick in self.chat_choices() else None

    def served(self, kind: str) -> bool:
        """False only when it is known that no model of the kind can be used: the catalog lists none of them, or
        each was answered "not served"."""
        return any(self._usable(kind, model) for model in self._lists[kind])

    async def failed(self, kind: str, model: str) -> str | None:
        """The gateway said `model` is not served: the kind moves on to the next usable model of its list, which
        is returned (None: none left). The admins hear of each failed model once."""
        replacement = self._fail(kind, model)
        log.warning(
            "model %s (%s) is not served; %s", model, kind, f"now {replacement}" if replacement else "none left"
        )
        if model not in self._told and self.notices is not None:
            self._told.add(model)
            await self.notices.model_replaced(kind, model, replacement)
        await self.changed(MODEL_FAILED, f"{kind} {model}")
        return replacement

    def _fail(self, kind: str, model: str) -> str | None:
        self._failed[kind].add(model)
        replacement = next((other for other in self._lists[kind] if self._usable(kind, other)), None)
        if replacement is not None:
            self._in_use[kind] = replacement
        return replacement

    def heard_failure(self, payload: str) -> None:
        """Another replica found a model not served: move on here too (its admins were told there, once)."""
        kind, _, model = payload.partition(" ")
        if kind in self._failed and model not in self._failed[kind]:
            self._told.add(model)
            self._fail(kind, model)

    async def heard_lists(self, _payload: str) -> None:
        """An admin changed a kind's list on another replica: read the stored lists again."""
        self._lists = {kind: self._settings.model_list(kind) for kind in MODEL_KINDS}
        self._failed = {kind: set() for kind in MODEL_KINDS}
        await self.load_lists()

    async def set_list(self, kind: str, models: list[str], admin_id: int) -> None:
        """An admin's list for a kind, checked against a fresh catalog, in use at once and stored for good."""
        if not await self.refresh():
            raise CATALOG_UNREADABLE
        assert self._catalog is not None
        unknown = [model for model in models if model not in self._catalog]
        if unknown:
            raise Refusal(
                _("The gateway does not list {models}; nothing was changed.").format(models=", ".join(unknown))
            )
        await self._repo.set(kind, models, admin_id)
        self._lists[kind] = list(models)
        self._failed[kind] = set()
        self._in_use[kind] = self._resolve(kind)
        await self.changed(MODEL_LISTS, kind)

    def report(self) -> list[KindReport]:
        catalog = self._catalog
        return [
            KindReport(
                kind,
                self._in_use[kind],
                [
                    ListedModel(model, None if catalog is None else model in catalog, (catalog or {}).get(model))
                    for model in self._lists[kind]
                ],
            )
            for kind in MODEL_KINDS
        ]

    def retiring(self, within_days: int = RETIREMENT_WARNING_DAYS) -> list[tuple[str, str, dt.date]]:
        """(kind, model, day) of the models in use whose announced shutdown is within `within_days`."""
        if self._catalog is None:
            return []
        horizon = self._today() + dt.timedelta(days=within_days)
        soon = []
        for kind in MODEL_KINDS:
            day = self._catalog.get(self._in_use[kind])
            if day is not None and day <= horizon:
                soon.append((kind, self._in_use[kind], day))
        return soon

    async def warn_of_retirements(self) -> None:
        soon = self.retiring()
        if soon and self.notices is not None:
            await self.notices.models_retiring(soon)

    def _resolve_all(self) -> None:
        self._in_use = {kind: self._resolve(kind) for kind in MODEL_KINDS}

    def _resolve(self, kind: str) -> str:
        """The first usable model of the list; the first of the list when the catalog lists none of them (the
        gateway's answers then decide)."""
        models = self._lists[kind]
        return next((model for model in models if self._usable(kind, model)), models[0])

    def _usable(self, kind: str, model: str) -> bool:
        if model in self._failed[kind]:
            return False
        if self._catalog is None:
            return True
        if model not in self._catalog:
            return False
        shutdown = self._catalog[model]
        return shutdown is None or shutdown > self._today()
