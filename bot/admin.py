"""What admins (ADMIN_IDS, and nothing else) may do: set quotas, ban and unban, read the statistics; all audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import QUOTA_KINDS, Settings
from bot.core.actors import Actor
from bot.core.changes import Changed, nobody_else
from bot.core.errors import Refusal
from bot.core.i18n import __
from bot.models import Models
from bot.quotas import QuotaLine, Quotas, utc_today
from storage.audit import AuditRepository
from storage.usage import UsageRepository
from storage.users import UserRepository

ADMINS_ONLY = Refusal(__("This command is for admins only."))


@dataclass(frozen=True, slots=True)
class KindStats:
    kind: str
    today: int
    month: int
    tokens_today: int
    tokens_month: int


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    active_today: int
    kinds: list[KindStats]


BANS = "bans"  # the replicas' notice of a ban or an unban; payload: "<id> 1" or "<id> 0"


class Administration:
    def __init__(
        self,
        settings: Settings,
        users: UserRepository,
        usage: UsageRepository,
        audit: AuditRepository,
        quotas: Quotas,
        models: Models,
    ) -> None:
        self._admins = settings.ADMIN_IDS
        self._users = users
        self._usage = usage
        self._audit = audit
        self._quotas = quotas
        self._models = models
        self._banned: set[int] = set()
        self.changed: Changed = nobody_else

    async def load(self) -> None:
        """Read the banned users once; from then on the set is kept current by this process's bans and, with
        replicas, by the others' notices (`heard`)."""
        self._banned = await self._users.banned_ids()

    def heard(self, payload: str) -> None:
        """Another replica (or this one) banned or unbanned someone: "<id> 1" or "<id> 0"."""
        target, _, banned = payload.partition(" ")
        if banned == "1":
            self._banned.add(int(target))
        else:
            self._banned.discard(int(target))

    def is_admin(self, user_id: int) -> bool:
        return user_id in self._admins

    def is_banned(self, user_id: int) -> bool:
        return user_id in self._banned and not self.is_admin(user_id)

    def require_admin(self, user_id: int) -> None:
        if not self.is_admin(user_id):
            raise ADMINS_ONLY

    def admin_id(self, actor: Actor) -> int:
        """The admin behind a command, or ADMINS_ONLY. A message sent on behalf of a chat (an anonymous group admin)
        is nobody's admin command: the bot cannot tell who sent it."""
        if actor.is_chat or not self.is_admin(actor.id):
            raise ADMINS_ONLY
        return actor.id

    async def set_models(self, admin_id: int, kind: str, models: list[str]) -> None:
        """A kind's model list, checked against the gateway's catalog, in use at once, kept across restarts."""
        self.require_admin(admin_id)
        await self._models.set_list(kind, models, admin_id)
        await self._audit.record(admin_id, "setmodel", 0, f"{kind}={','.join(models)}")

    async def set_quota(self, admin_id: int, target: int, kinds: Sequence[str], limit: int) -> None:
        self.require_admin(admin_id)
        await self._usage.set_override(target, list(kinds), limit)
        await self._audit.record(admin_id, "setquota", target, f"{','.join(kinds)}={limit}")

    async def ban(self, admin_id: int, target: int) -> None:
        self.require_admin(admin_id)
        if self.is_admin(target):
            raise Refusal(__("Admins cannot be banned; remove them from ADMIN_IDS first."))
        await self._users.set_banned(target, True)
        self._banned.add(target)
        await self.changed(BANS, f"{target} 1")
        await self._audit.record(admin_id, "ban", target)

    async def unban(self, admin_id: int, target: int) -> None:
        self.require_admin(admin_id)
        await self._users.set_banned(target, False)
        self._banned.discard(target)
        await self.changed(BANS, f"{target} 0")
        await self._audit.record(admin_id, "unban", target)

    async def claim_ban_notice(self, user_id: int) -> bool:
        return await self._users.claim_ban_notice(user_id)

    async def quota_of(self, admin_id: int, target: int) -> tuple[str | None, list[QuotaLine]]:
        """The target's name (None when the bot never met them) and their use today."""
        self.require_admin(admin_id)
        return await self._users.name_of(target), await self._quotas.report(target)

    async def stats(self, admin_id: int) -> Stats:
        self.require_admin(admin_id)
        today = utc_today()
        month_start = today[:8] + "01"
        users, active = await self._users.counts(since=today)
        daily = await self._usage.totals(today, today)
        monthly = await self._usage.totals(month_start, today)
        kinds = [
            KindStats(
                kind,
                today=daily.get(kind, (0, 0))[0],
                month=monthly.get(kind, (0, 0))[0],
                tokens_today=daily.get(kind, (0, 0))[1],
                tokens_month=monthly.get(kind, (0, 0))[1],
            )
            for kind in QUOTA_KINDS
        ]
        return Stats(users=users, active_today=active, kinds=kinds)
