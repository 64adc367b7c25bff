"""The usage ledger: reservations in flight, uses that succeeded, and per-user limit overrides."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.database import Database, Transaction, utc_now

UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    """A reservation id when the use fits under the limit, else None; and the limit that applied."""

    reservation_id: int | None
    limit: int


class UsageRepository:
    def __init__(self, database: Database, holder: str | None = None, lifetime: float = 0.0) -> None:
        """`holder`: with replicas, this replica's name; its reservations live `lifetime` seconds unless it keeps
        them alive, so those of a replica that died stop counting soon after."""
        self._db = database
        self._holder = holder
        self._lifetime = lifetime

    async def reserve(self, user_id: int, kind: str, day: str, default_limit: int) -> ReserveOutcome:
        """Check the limit and hold one use in the same transaction, so parallel requests cannot overspend."""
        async with self._db.transaction() as transaction:
            row = await transaction.fetch_one(
                "SELECT daily_limit FROM quota_overrides WHERE user_id = ? AND kind = ?", (user_id, kind)
            )
            limit = int(row[0]) if row else default_limit
            now = time.time()
            if limit != UNLIMITED:
                row = await transaction.fetch_one(
                    """
                    SELECT
                        COALESCE((SELECT count FROM usage WHERE user_id = ?1 AND kind = ?2 AND day = ?3), 0)
                      + (SELECT COUNT(*) FROM reservations WHERE user_id = ?1 AND kind = ?2 AND day = ?3
                                                               AND (expires_at IS NULL OR expires_at > ?4))
                    """,
                    (user_id, kind, day, now),
                )
                if int(row[0]) >= limit:
                    return ReserveOutcome(None, limit)
            expires = now + self._lifetime if self._holder is not None else None
            row = await transaction.fetch_one(
                "INSERT INTO reservations (user_id, kind, day, created_at, holder, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (user_id, kind, day, utc_now(), self._holder, expires),
            )
            return ReserveOutcome(int(row[0]), limit)

    async def commit(self, reservation_id: int, user_id: int, kind: str, day: str, tokens: int) -> None:
        """Turn a reservation into a counted use."""
        async with self._db.transaction() as transaction:
            await count_use(transaction, reservation_id, user_id, kind, day, tokens)

    async def release(self, reservation_id: int) -> None:
        await self._db.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))

    async def release_all(self) -> int:
        """Drop reservations left by a previous process: their work died with it, so nobody pays."""
        return await self._db.execute("DELETE FROM reservations")

    async def keep_alive(self) -> None:
        """This replica's reservations live on; those whose replica stopped keeping them alive are dropped."""
        now = time.time()
        await self._db.execute(
            "UPDATE reservations SET expires_at = ? WHERE holder = ?", (now + self._lifetime, self._holder)
        )
        await self._db.execute("DELETE FROM reservations WHERE expires_at < ?", (now - self._lifetime,))

    async def prune_reservations(self, before: str) -> int:
        """Drop reservations older than `before`: no request runs that long, so their work is gone."""
        return await self._db.execute("DELETE FROM reservations WHERE created_at < ?", (before,))

    async def taken_on(self, user_id: int, day: str) -> dict[str, int]:
        """Uses per kind on `day`, counting those in flight: exactly what the limit is checked against."""
        rows = await self._db.fetch_all(
            """
            SELECT kind, SUM(n) AS taken FROM (
                SELECT kind, count AS n FROM usage WHERE user_id = ?1 AND day = ?2
                UNION ALL
                SELECT kind, 1 AS n FROM reservations
                WHERE user_id = ?1 AND day = ?2 AND (expires_at IS NULL OR expires_at > ?3)
            ) AS uses GROUP BY kind
            """,
            (user_id, day, time.time()),
        )
        return {row["kind"]: int(row["taken"]) for row in rows}

    async def totals(self, first_day: str, last_day: str) -> dict[str, tuple[int, int]]:
        """Uses and tokens per kind over the days from `first_day` to `last_day`, everyone together."""
        rows = await self._db.fetch_all(
            "SELECT kind, SUM(count), SUM(tokens) FROM usage WHERE day BETWEEN ? AND ? GROUP BY kind",
            (first_day, last_day),
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in rows}

    async def overrides(self, user_id: int) -> dict[str, int]:
        rows = await self._db.fetch_all(
            "SELECT kind, daily_limit FROM quota_overrides WHERE user_id = ?", (user_id,)
        )
        return {row["kind"]: int(row["daily_limit"]) for row in rows}

    async def set_override(self, user_id: int, kinds: list[str], limit: int) -> None:
        async with self._db.transaction() as transaction:
            await transaction.executemany(
                """
                INSERT INTO quota_overrides (user_id, kind, daily_limit) VALUES (?, ?, ?)
                ON CONFLICT (user_id, kind) DO UPDATE SET daily_limit = excluded.daily_limit
                """,
                [(user_id, kind, limit) for kind in kinds],
            )


async def count_use(
    transaction: Transaction, reservation_id: int, user_id: int, kind: str, day: str, tokens: int
) -> None:
    """Within a caller's transaction: the reservation becomes a counted use."""
    await transaction.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))
    await transaction.execute(
        """
        INSERT INTO usage (user_id, kind, day, count, tokens) VALUES (?, ?, ?, 1, ?)
        ON CONFLICT (user_id, kind, day) DO UPDATE SET count = usage.count + 1, tokens = usage.tokens + excluded.tokens
        """,
        (user_id, kind, day, tokens),
    )


async def uncount_use(transaction: Transaction, user_id: int, kind: str, day: str) -> None:
    """Within a caller's transaction: give back one counted use (a refund)."""
    await transaction.execute(
        "UPDATE usage SET count = count - 1 WHERE user_id = ? AND kind = ? AND day = ? AND count > 0",
        (user_id, kind, day),
    )
