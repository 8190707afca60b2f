"""Databases, migrations and sample data for every service that has a database:
what `groundwork migrate` / `seed` do on the local mesh, and what the chart's
hook Jobs run (groundwork_cli/migrate.py).

Kept free of the local runtime's process machinery (supervisor, embedded
servers), so the container image needs only the services' own dependencies."""

from __future__ import annotations

from collections.abc import Callable

from groundwork_cli.runtime.registry import SeedContext, services
from groundwork_cli.runtime.secrets import Secrets
from groundwork_envoy.model import Mesh
from groundwork_shared.database import database_url, ensure_database
from groundwork_shared.migrations import migrate

Say = Callable[[str], None]


async def migrate_and_seed(
    server_url: str,
    mesh: Mesh,
    secrets: Secrets,
    say: Say,
    seed: bool = True,
    reset: bool = False,
) -> None:
    context = SeedContext(reset, secrets, mesh)
    for name, entry in services().items():
        if name not in mesh.services or entry.migrations is None:
            continue
        if await ensure_database(server_url, name):
            say(f"  created database {name}")
        url = database_url(server_url, name)
        applied = await migrate(url, entry.migrations)
        for m in applied:
            say(f"  {name}: applied migration {m.version:04d}_{m.name}")
        if seed and entry.seed:
            done = await entry.seed(url, context)
            if done:
                say(f"  {name}: {done}")
