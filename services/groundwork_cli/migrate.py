"""The chart's hook Jobs on Kubernetes: `python -m groundwork_cli.migrate
migrate|seed` does what `groundwork migrate` / `seed` do on the local mesh
(runtime/databases.py), against the server GROUNDWORK_POSTGRES_URL names."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from groundwork_cli.runtime.databases import migrate_and_seed
from groundwork_cli.runtime.secrets import Secrets
from groundwork_envoy.model import load_mesh
from groundwork_shared.database import redact


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
