"""Postgres access: connection pools and the database-per-service convention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from groundwork_shared import metrics


def database_url(server_url: str, database: str) -> str:
    """The URL of `database` on the server that `server_url` names."""
    parts = urlsplit(server_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a postgresql:// URL: {redact(server_url)}")
    return urlunsplit(parts._replace(path="/" + database))


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


async def ensure_database(server_url: str, database: str) -> bool:
    """Create `database` unless it exists. Returns True when it was created."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {database!r}")
    conn = await asyncpg.connect(database_url(server_url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{database}"')
        return True
    finally:
        await conn.close()


async def create_pool(url: str, min_size: int, max_size: int) -> asyncpg.Pool:
    if not url:
        raise ValueError("GROUNDWORK_DATABASE_URL is not set")
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=10,
        # Statement timeouts keep a slow query from holding a pooled connection forever.
        server_settings={"statement_timeout": "5000", "application_name": "groundwork"},
    )
    assert pool is not None
    metrics.POOLS.add("main", pool)
    return pool


def reachable(pool: asyncpg.Pool) -> Callable[[], Awaitable[None]]:
    """A health probe: the service is ready only while its database answers."""

    async def probe() -> None:
        await pool.fetchval("SELECT 1")

    return probe
