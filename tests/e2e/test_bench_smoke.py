"""`groundwork bench mesh`, briefly, against the test mesh: every path answers
and the JSON has every figure. Not the numbers: a test never asserts a time."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Mesh

PATHS = {
    "public read": {
        "Envoy direct response, REST h2c (ceiling)",
        "app alone, gRPC",
        "one bare proxy, gRPC",
        "two bare proxies + mTLS, gRPC",
        "edge + sidecar, REST h2c",
        "edge + sidecar, REST HTTP/1.1",
        "edge + sidecar, gRPC",
    },
    "latency at": {"app alone", "two bare proxies + mTLS", "edge + sidecar"},
    "micro-cached public read": {
        "Envoy direct response, REST h2c (ceiling)",
        "edge micro-cache, REST h2c",
    },
    "write": {"app alone, gRPC", "edge + sidecar, REST"},
    "uncached authenticated read": {
        "Envoy direct response, REST h2c (ceiling)",
        "app alone, gRPC",
        "edge + sidecar, REST h2c",
        "edge + sidecar, gRPC",
    },
}
FIGURES = {"per_second", "requests", "succeeded", "non_2xx", "p50_ms", "p99_ms"}


def test_a_short_mesh_bench_measures_every_path(mesh: Mesh, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--requests", "150", "--write-seconds", "1", "--rate", "100", "--rate-seconds", "1"]
    args += ["--idle-seconds", "1"]
    result = mesh.cli("bench", "mesh", *args, "--json", str(out), timeout=600)
    assert "public read, edge REST (micro-cache) / ceiling" in result.stdout
    report = json.loads(out.read_text())
    assert isinstance(report["idle_cpu_percent"], dict)
    groups = report["groups"]
    for prefix, paths in PATHS.items():
        (group,) = [g for g in groups if g.startswith(prefix)]
        assert {row["path"] for row in groups[group]} == paths, group
        for row in groups[group]:
            assert row.keys() >= FIGURES, row
            assert row["succeeded"] > 0 and row["non_2xx"] == 0, row
            # Some process did the work, where the row lasted long enough for /proc
            # to see it: CPU time is counted in 10 ms ticks, and 150 requests to
            # Envoy's direct response can take 5 ms.
            if row["requests"] / row["per_second"] >= 0.2:
                assert row["cpu_ms_per_request"], row
    # gRPC answers were counted where they were served, not only as HTTP 200s.
    app_alone = next(r for r in groups[next(iter(groups))] if r["path"] == "app alone, gRPC")
    assert app_alone["app_codes"]["OK"] >= app_alone["succeeded"]
    assert set(report["ratios"]) >= {
        "public read, edge REST (micro-cache) / ceiling",
        "public read, edge gRPC (not cached), req/s",
        "authenticated read, edge gRPC / edge REST",
        "micro-cached read, edge / ceiling",
        "p99 added by two proxies + mTLS, ms",
        "p99 added by edge + sidecar, ms",
        "edge vCPU per 1,000 req/s",
        "sidecar vCPU per 1,000 req/s",
    }
