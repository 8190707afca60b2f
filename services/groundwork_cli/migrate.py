"""Databases, migrations and sample data for every service that has a database:
what `groundwork migrate` / `seed` do on the local mesh, and what the chart's
hook Jobs run on Kubernetes (`python -m groundwork_cli.migrate migrate|seed`).

Kept free of the local runtime's imports (supervisor, embedded servers), so the
container image needs only the services' own dependencies."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from groundwork_cli.registry import SeedContext, services
from groundwork_cli.runtime.secrets import Secrets
from groundwork_envoy.model import Mesh, load_mesh
from groundwork_shared.database import database_url, ensure_database, redact
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


@dataclass(frozen=True)
class EnvironmentSecrets(Secrets):
    """The secrets a Kubernetes Job receives from the chart's Secrets as variables."""

    def _require(self, variable: str) -> str:
        value = os.environ.get(variable, "")
        if not value:
            sys.exit(f"{variable} is not set (the chart passes it from a Secret)")
        return value

    def identity_kek(self) -> str:
        return self._require("GROUNDWORK_KEY_ENCRYPTION_KEY")

    def admin_password(self) -> str:
        return self._require("GROUNDWORK_ADMIN_PASSWORD")


def main(argv: list[str]) -> int:
    if argv not in (["migrate"], ["seed"]):
        print("usage: python -m groundwork_cli.migrate migrate|seed", file=sys.stderr)
        return 2
    server_url = os.environ.get("GROUNDWORK_POSTGRES_URL", "")
    if not server_url:
        print("GROUNDWORK_POSTGRES_URL is not set", file=sys.stderr)
        return 2
    print(f"{argv[0]} against {redact(server_url)}", flush=True)
    asyncio.run(
        migrate_and_seed(
            server_url,
            load_mesh(),
            EnvironmentSecrets(Path("/nonexistent")),
            lambda line: print(line, flush=True),
            seed=argv[0] == "seed",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
