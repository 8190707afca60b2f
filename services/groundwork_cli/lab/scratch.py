"""A database of the lab's own on the mesh's Postgres server, dropped afterwards:
experiments that change schemas or race writers never touch a service's data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from groundwork_shared.database import database_url


@asynccontextmanager
async def database(server_url: str, name: str) -> AsyncIterator[str]:
    """The URL of a new, empty database `lab_<name>` (any left by a run that was
    killed is replaced)."""
    database_name = f"lab_{name}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database_name}"')
        yield database_url(server_url, database_name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')
        await admin.close()
