"""The quota rules in one place: daily limits per user and kind, reserve before work, charge only on success."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import QUOTA_KINDS, Settings
from bot.core.errors import UserFacingError
from bot.core.i18n import _
from storage.usage import UNLIMITED, UsageRepository


def utc_today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


class QuotaExceeded(UserFacingError):
    """The user has no uses of `kind` left today; nothing upstream may be called."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(f"{kind} quota exhausted (limit {limit})")
        self.kind = kind
        self.limit = limit

    @property
    def user_message(self) -> str:  # type: ignore[override]
        # The kind keeps its own name in every language: it is the name /quota and the admins use.
        if self.limit == 0:
            return _("{kind} is not available to you: your daily limit is 0.").format(kind=self.kind)
        return _("Daily limit reached for {kind}: {limit} per day. It resets at 00:00 UTC; see /quota.").format(
            kind=self.kind, limit=self.limit
        )


@dataclass(slots=True)
class Use:
    """One reserved use; `tokens` is filled in by the work so the ledger can record it."""

    user_id: int
    kind: str
    day: str
    reservation_id: int
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class QuotaLine:
    kind: str
    used: int
    limit: int  # -1 unlimited

    @property
    def unlimited(self) -> bool:
        return self.limit == UNLIMITED


class Quotas:
    def __init__(self, usage: UsageRepository, settings: Settings, today: Callable[[], str] = utc_today) -> None:
        self._usage = usage
        self._settings = settings
        self._today = today

    async def reserve(self, user_id: int, kind: str) -> Use:
        if kind not in QUOTA_KINDS:
            raise ValueError(f"unknown quota kind {kind!r}")
        day = self._today()
        # Shielded: a reservation cancelled half-way may still be written; it must then be given back, not left
        # to count against the limit until the next restart.
        reserving = asyncio.ensure_future(
            self._usage.reserve(user_id, kind, day, self._settings.quota_default(kind))
        )
        try:
            outcome = await asyncio.shield(reserving)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                made = await reserving
                if made.reservation_id is not None:
                    await self._usage.release(made.reservation_id)
            raise
        if outcome.reservation_id is None:
            raise QuotaExceeded(kind, outcome.limit)
        return Use(user_id=user_id, kind=kind, day=day, reservation_id=outcome.reservation_id)

    async def commit(self, use: Use) -> None:
        await self._usage.commit(use.reservation_id, use.user_id, use.kind, use.day, use.tokens)

    async def release(self, use: Use) -> None:
        await self._usage.release(use.reservation_id)

    async def report(self, user_id: int) -> list[QuotaLine]:
        """Today's use against the limit, for every kind. A use in flight counts: it holds its place under the
        limit, and a reply the user already sees is never shown as not yet used."""
        used = await self._usage.taken_on(user_id, self._today())
        overrides = await self._usage.overrides(user_id)
        return [
            QuotaLine(
                kind=kind,
                used=used.get(kind, 0),
                limit=overrides.get(kind, self._settings.quota_default(kind)),
            )
            for kind in QUOTA_KINDS
        ]
