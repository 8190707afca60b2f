"""Versioned SQL migrations, applied by a command (never at service start).

Files are `NNNN_description.sql` in a service's migrations folder. Each runs in
its own transaction and is recorded with a checksum; an applied file that was
edited afterwards is refused, because the databases it already ran on would
silently differ from new ones. An advisory lock serialises concurrent runners
(two `migrate` Jobs, or a Job racing a developer)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6777_6D69  # "gwmi"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


SHARED_SQL = Path(__file__).parent / "sql"
_INCLUDE = re.compile(r"^--! include (\w+\.sql)\s*$", re.MULTILINE)


def _expand(text: str, source: str) -> str:
    """`--! include outbox.sql` pulls in a schema the shared package owns (outbox,
    inbox), so services share it without copies. The checksum covers the result."""

    def include(match: re.Match[str]) -> str:
        path = SHARED_SQL / match[1]
        if not path.exists():
            raise MigrationError(f"{source}: no shared schema {match[1]}")
        return path.read_text()

    return _INCLUDE.sub(include, text)


def discover(folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        migrations.append(Migration(int(match[1]), match[2], _expand(path.read_text(), path.name)))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {folder}")
    return migrations


async def migrate(url: str, folder: Path) -> list[Migration]:
    """Apply pending migrations; return the ones applied now."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        done = []
        for migration in discover(folder):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it "
                        "was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        await conn.close()
