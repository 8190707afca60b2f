from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from groundwork_catalog import MIGRATIONS
from groundwork_shared.migrations import MigrationError, discover, migrate


async def test_catalog_migrates_up_from_empty_and_is_idempotent(fresh_database: str) -> None:
    applied = await migrate(fresh_database, Path(MIGRATIONS))
    assert [m.version for m in applied] == [m.version for m in discover(Path(MIGRATIONS))]
    assert await migrate(fresh_database, Path(MIGRATIONS)) == []
    conn = await asyncpg.connect(fresh_database)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()
    assert {
        "venues",
        "venue_seats",
        "events",
        "event_seats",
        "idempotency_keys",
        "schema_migrations",
    } <= tables


async def test_an_edited_migration_is_refused(fresh_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_one.sql").write_text("CREATE TABLE one (id int);")
    await migrate(fresh_database, tmp_path)
    (tmp_path / "0001_one.sql").write_text("CREATE TABLE one (id bigint);")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await migrate(fresh_database, tmp_path)


async def test_a_failing_migration_leaves_nothing_half_applied(
    fresh_database: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT nonsense;")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(fresh_database, tmp_path)
    conn = await asyncpg.connect(fresh_database)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        half = await conn.fetchval("SELECT to_regclass('half')")
    finally:
        await conn.close()
    assert versions == [1]
    assert half is None
