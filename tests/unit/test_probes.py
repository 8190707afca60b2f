"""wait_until gives up at once on a server that has exited, naming its status,
instead of probing a dead address until the timeout."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from groundwork_cli.runtime import probes


def test_an_exited_server_is_reported_at_once_with_its_status() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    probe = probes.postgres("postgresql://postgres:x@127.0.0.1:1/postgres")
    with pytest.raises(probes.NotReady, match=r"^postgres exited with status 3$"):
        asyncio.run(probes.wait_until(probe, 600, "postgres", process))
