"""Generated code is committed; it must be exactly what proto/generate.py produces."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_generated_code_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path / "gen")],
        check=True,
        capture_output=True,
    )
    committed = ROOT / "proto" / "gen"
    fresh = tmp_path / "gen"
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(committed)
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ), "run `make proto` and commit proto/gen"
    drifted = [str(f) for f in files if not filecmp.cmp(fresh / f, committed / f, shallow=False)]
    assert not drifted, f"proto/gen is stale, run `make proto`: {drifted}"
