"""The Python services of the mesh: how to run, migrate and seed each one.
Names match mesh.yaml; a test fails if the two disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

Seeder = Callable[[asyncpg.Connection, bool], Awaitable[int]]


@dataclass(frozen=True)
class ServiceEntry:
    module: str  # run with `python -m MODULE`
    migrations: Path
    seed: Seeder | None = None


def _catalog_seed(conn: asyncpg.Connection, reset: bool) -> Awaitable[int]:
    from groundwork_catalog.seed import seed

    return seed(conn, reset=reset)


def services() -> dict[str, ServiceEntry]:
    import groundwork_catalog

    return {
        "catalog": ServiceEntry(
            "groundwork_catalog", Path(groundwork_catalog.MIGRATIONS), _catalog_seed
        ),
    }
