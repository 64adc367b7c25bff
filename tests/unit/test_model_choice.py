"""Which model serves each kind: the catalog picks from the preference lists, shut-down models count as unlisted,
"not served" hands over to the next model (admins told once per model), /setmodel is checked and kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from bot.clients.catalog import Catalog, CatalogUnavailable, shutdown_day
from bot.config import Settings
from bot.core.errors import Refusal
from bot.models import Models
from storage import Database
from storage.models import ModelListsRepository

TODAY = dt.date(2026, 12, 1)


class Notices:
    def __init__(self) -> None:
        self.replaced: list[tuple[str, str, str | None]] = []
        self.retiring: list[Sequence[tuple[str, str, dt.date]]] = []

    async def model_replaced(self, kind: str, failed: str, replacement: str | None) -> None:
        self.replaced.append((kind, failed, replacement))

    async def models_retiring(self, retiring: Sequence[tuple[str, str, dt.date]]) -> None:
        self.retiring.append(retiring)


class Gateway:
    """The catalog the gateway lists, changeable by the test; None: it cannot be read."""

    def __init__(self, catalog: Catalog | None) -> None:
        self.catalog = catalog

    async def read(self) -> Catalog:
        if self.catalog is None:
            raise CatalogUnavailable("down")
        return dict(self.catalog)


@pytest.fixture
def database(any_database: Database) -> Database:
    """Each test runs on SQLite and on PostgreSQL."""
    return any_database


def _models(database: Database, gateway: Gateway, **lists: str) -> tuple[Models, Notices]:
    settings = Settings(BOT_TOKEN="1:x", API_KEY="k", **{f"{k.upper()}_MODEL": v for k, v in lists.items()})
    models = Models(settings, ModelListsRepository(database), gateway.read, today=lambda: TODAY)
    notices = Notices()
    models.notices = notices
    return models, notices


async def test_the_first_listed_model_of_each_list_is_used(database: Database) -> None:
    gateway = Gateway({"b": None, "c": None, "tts-1": None})
    models, _ = _models(database, gateway, chat="a,b,c", tts="gpt-4o-mini-tts,tts-1")
    assert models.current("chat") == "a"  # before the catalog is read: the first of the list
    assert await models.refresh()
    assert (models.current("chat"), models.current("tts")) == ("b", "tts-1")


async def test_a_model_past_its_shutdown_counts_as_unlisted(database: Database) -> None:
    gateway = Gateway({"a": TODAY, "b": TODAY + dt.timedelta(days=1)})
    models, _ = _models(database, gateway, chat="a,b")
    await models.refresh()
    assert models.current("chat") == "b"


async def test_an_unreadable_or_unhelpful_catalog_leaves_the_first_of_the_list(database: Database) -> None:
    gateway = Gateway(None)
    models, _ = _models(database, gateway, chat="a,b", audio="x,y")
    assert not await models.refresh()
    assert models.current("chat") == "a" and models.served("audio")
    gateway.catalog = {"other": None}
    assert await models.refresh()
    assert models.current("chat") == "a"  # none listed: the gateway's answers decide
    assert not models.served("audio")  # known: no audio model of the list is served


async def test_not_served_hands_over_and_admins_hear_of_each_model_once(database: Database) -> None:
    gateway = Gateway({"a": None, "b": None, "c": None})
    models, notices = _models(database, gateway, chat="a,b,c")
    await models.refresh()
    assert await models.failed("chat", "a") == "b"
    assert models.current("chat") == "b"
    assert await models.failed("chat", "a") == "b"  # the same failure again: no second notice
    assert await models.failed("chat", "b") == "c"
    assert await models.failed("chat", "c") is None
    assert not models.served("chat")
    assert notices.replaced == [("chat", "a", "b"), ("chat", "b", "c"), ("chat", "c", None)]
    await models.refresh()  # a switch made by fallback lasts until the next catalog read
    assert models.current("chat") == "a" and models.served("chat")


async def test_setmodel_is_checked_against_the_catalog_and_kept(database: Database) -> None:
    gateway = Gateway({"a": None, "b": None})
    models, _ = _models(database, gateway, chat="a")
    with pytest.raises(Refusal) as refused:
        await models.set_list("chat", ["b", "zz"], admin_id=1)
    assert "zz" in str(refused.value.user_message) and models.preference("chat") == ["a"]
    await models.set_list("chat", ["b", "a"], admin_id=1)
    assert models.current("chat") == "b"

    again, _ = _models(database, gateway, chat="a")  # a restart: the stored list wins over the settings'
    await again.load_lists()
    assert again.preference("chat") == ["b", "a"] and again.current("chat") == "b"

    gateway.catalog = None
    with pytest.raises(Refusal):
        await models.set_list("chat", ["a"], admin_id=1)  # the catalog cannot be read: nothing changes
    assert models.preference("chat") == ["b", "a"]


async def test_models_shutting_down_within_30_days_are_warned_of(database: Database) -> None:
    gateway = Gateway({"a": TODAY + dt.timedelta(days=30), "v": TODAY + dt.timedelta(days=31), "e": None})
    models, notices = _models(database, gateway, chat="a", vision="v", embedding="e")
    await models.refresh()
    await models.warn_of_retirements()
    assert notices.retiring == [[("chat", "a", TODAY + dt.timedelta(days=30))]]


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2027-01-14", dt.date(2027, 1, 14)),
        ("2027-01-14T00:00:00Z", dt.date(2027, 1, 14)),
        (1799884800, dt.date(2027, 1, 14)),
        (None, None),
        ("soon", None),
        (True, None),
        (-5, None),
    ],
)
def test_shutdown_dates_come_as_dates_or_unix_times(value: object, day: dt.date | None) -> None:
    assert shutdown_day(value) == day
