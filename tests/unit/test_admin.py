"""Admin rules: argument parsing that only takes what it should, admin-only actions, and the audit trail."""

from collections.abc import AsyncIterator

import pytest

from bot.admin import Administration
from bot.clients.catalog import Catalog, CatalogUnavailable
from bot.config import Settings
from bot.core.errors import Refusal
from bot.models import Models
from bot.quotas import Quotas
from handlers.admin import SETQUOTA_USAGE, parse_setquota, parse_target, parse_user_id
from storage import Database, UsageRepository, UserRepository
from storage.audit import AuditRepository
from storage.models import ModelListsRepository

ALL = ["chat", "voice", "vision", "edit", "draw", "imagine", "search"]


@pytest.mark.parametrize(
    ("args", "reply_target", "expected"),
    [
        ("123 chat 5", None, (123, ["chat"], 5)),
        ("123 ALL -1", None, (123, ALL, -1)),
        ("imagine 0", 77, (77, ["imagine"], 0)),
        ("  123   voice   1000000 ", None, (123, ["voice"], 1000000)),
        # A chat's own id: messages sent on behalf of a channel or by anonymous admins count as that chat.
        ("-1001234567890 chat 5", None, (-1001234567890, ["chat"], 5)),
        ("-7 chat 5", None, (-7, ["chat"], 5)),
    ],
)
def test_setquota_arguments(args: str, reply_target: int | None, expected: tuple) -> None:
    assert parse_setquota(args, reply_target) == expected


@pytest.mark.parametrize(
    ("args", "reply_target"),
    [
        ("imagine 5", None),  # no target at all
        ("123 chat 5 extra", None),
        ("123 chat 10000000", None),
        ("123 chat -5", None),
        ("123 chat +5", None),
        ("0 chat 5", None),
        ("-0 chat 5", None),
        ("--7 chat 5", None),
        ("123 chat 0x10", None),
        ("١٢٣ chat 5", None),
        ("123 chat ５", None),
        ("123 'chat' 5", None),
        ("9007199254740993 chat 5", None),  # beyond Telegram's 52-bit ids
    ],
)
def test_setquota_rejects_anything_else(args: str, reply_target: int | None) -> None:
    with pytest.raises(Refusal) as refused:
        parse_setquota(args, reply_target)
    assert refused.value is SETQUOTA_USAGE


def test_targets_and_user_ids() -> None:
    usage = Refusal("usage")
    assert parse_target("42", None, usage) == 42
    assert parse_target("", 7, usage) == 7
    assert parse_target("-1001234567890", None, usage) == -1001234567890  # a channel or group
    for bad in ("", "x", "4 2", "--1", "-0", "- 1", "+1"):
        with pytest.raises(Refusal):
            parse_target(bad, None, usage)
    assert parse_user_id("0001") is None and parse_user_id("1") == 1


async def _no_catalog() -> Catalog:
    raise CatalogUnavailable("not needed here")


@pytest.fixture
async def administration(any_database: Database) -> AsyncIterator[tuple[Administration, Database]]:
    database = any_database
    settings = Settings(BOT_TOKEN="1:x", API_KEY="k", ADMIN_IDS="1")
    usage = UsageRepository(database)
    models = Models(settings, ModelListsRepository(database), _no_catalog)
    admin = Administration(
        settings, UserRepository(database), usage, AuditRepository(database), Quotas(usage, settings), models
    )
    await admin.load()
    yield admin, database


async def test_admin_changes_are_audited_and_bans_survive_a_reload(
    administration: tuple[Administration, Database],
) -> None:
    admin, database = administration
    await admin.set_quota(1, 50, ["chat", "voice"], 3)
    await admin.ban(1, 60)
    await admin.unban(1, 60)
    await admin.ban(1, 61)
    entries = await AuditRepository(database).recent()
    assert [(who, action, target, details) for who, action, target, details, _ in entries] == [
        (1, "ban", 61, ""),
        (1, "unban", 60, ""),
        (1, "ban", 60, ""),
        (1, "setquota", 50, "chat,voice=3"),
    ]
    assert admin.is_banned(61) and not admin.is_banned(60)
    await admin.load()  # as after a restart
    assert admin.is_banned(61) and not admin.is_banned(60)


async def test_only_admins_act_and_admins_cannot_be_banned(
    administration: tuple[Administration, Database],
) -> None:
    admin, database = administration
    for attempt in (admin.set_quota(2, 2, ["chat"], -1), admin.ban(2, 3), admin.stats(2), admin.quota_of(2, 3)):
        with pytest.raises(Refusal):
            await attempt
    with pytest.raises(Refusal):
        await admin.ban(1, 1)
    assert await AuditRepository(database).recent() == []


async def test_a_ban_notice_is_given_once_per_ban(administration: tuple[Administration, Database]) -> None:
    admin, _ = administration
    await admin.ban(1, 70)
    assert await admin.claim_ban_notice(70)
    assert not await admin.claim_ban_notice(70)
    await admin.unban(1, 70)
    await admin.ban(1, 70)
    assert await admin.claim_ban_notice(70)
