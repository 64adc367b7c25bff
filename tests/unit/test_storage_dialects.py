"""SQLite and PostgreSQL keep the same schema (two sets of migrations, kept in step here), and the repositories'
SQL reaches PostgreSQL with its parameters renumbered and nothing else changed."""

from __future__ import annotations

from pathlib import Path

from storage import open_database
from storage.sql import to_postgres
from storage.sqlite import migrations
from testkit.postgres import PostgresServer


def test_both_dialects_have_the_same_numbered_migrations() -> None:
    assert [number for number, _ in migrations("sqlite")] == [number for number, _ in migrations("postgresql")]


async def test_both_databases_end_with_the_same_tables_columns_and_defaults(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    sqlite = await open_database(tmp_path / "schema.sqlite3")
    pg = await open_database(tmp_path, await postgres.new_database())
    try:
        tables = [row[0] for row in await sqlite.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        tables = [name for name in tables if not name.startswith("sqlite_")]
        sqlite_columns = {
            (table, row["name"], bool(row["notnull"]) or row["pk"] > 0, row["dflt_value"] is not None)
            for table in tables
            for row in await sqlite.fetch_all(f"PRAGMA table_info({table})")
        }
        pg_rows = await pg.fetch_all(
            """
            SELECT table_name, column_name, is_nullable, column_default, is_identity FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name <> 'schema_version'
            """
        )
        pg_columns = {(row[0], row[1], row[2] == "NO", row[3] is not None or row[4] == "YES") for row in pg_rows}
        # SQLite's primary keys are NOT NULL by being keys; INTEGER PRIMARY KEY numbers itself (PostgreSQL: identity).
        primary = {(table, "id") for table in tables}
        assert {c for c in sqlite_columns if (c[0], c[1]) not in primary} == {
            c for c in pg_columns if (c[0], c[1]) not in primary
        }
        assert {(c[0], c[1]) for c in sqlite_columns} == {(c[0], c[1]) for c in pg_columns}
        assert await sqlite.schema_version() == await pg.schema_version() == migrations("sqlite")[-1][0]
    finally:
        await sqlite.close()
        await pg.close()


def test_parameters_are_renumbered_outside_quoted_text() -> None:
    assert to_postgres("SELECT * FROM t WHERE a = ? AND b = ?") == "SELECT * FROM t WHERE a = $1 AND b = $2"
    assert to_postgres("WHERE user_id = ?1 AND x = ?2 OR y = ?1") == "WHERE user_id = $1 AND x = $2 OR y = $1"
    assert (
        to_postgres("SELECT 'why?', ? FROM t WHERE s = 'it''s ?'")
        == "SELECT 'why?', $1 FROM t WHERE s = 'it''s ?'"
    )


async def test_a_second_replica_starting_finds_the_schema_made(tmp_path: Path, postgres: PostgresServer) -> None:
    """Replicas started together migrate once: the others wait for the lock and find the work done."""
    import asyncio

    url = await postgres.new_database()
    first, second, third = await asyncio.gather(*(open_database(tmp_path, url) for _ in range(3)))
    try:
        versions = await first.fetch_all("SELECT version FROM schema_version ORDER BY version")
        assert [row[0] for row in versions] == [number for number, _ in migrations("postgresql")]
    finally:
        for database in (first, second, third):
            await database.close()
