"""What the edge's gRPC frame check (groundwork.grpc_one_message, a Lua filter)
costs a call, side by side in one run: two Envoys from the same binary answer a
unary gRPC call themselves (direct response), one bare and one with the filter
exactly as the edge renders it; h2load sends each the same framed message,
alternating, and each Envoy's CPU time over its round is divided by the calls.

    .venv/bin/python -m tests.bench_edge_checks
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import psutil

from groundwork_cli import bench_envoys, h2load
from groundwork_envoy.model import load_mesh
from groundwork_envoy.profiles import LocalProfile
from groundwork_envoy.render import compile_static

CALLS, ROUNDS = 100_000, 3
ADDRESS, PORTS = "127.93.0.1", {"bare": 18080, "checked": 18090}
PATH = "/groundwork.catalog.v1.CatalogService/ListEvents"


def _frame_check() -> dict[str, Any]:
    """The filter from the edge's own rendered configuration."""
    with tempfile.TemporaryDirectory() as state:
        mesh = load_mesh()
        edge = compile_static(mesh, LocalProfile(mesh, Path(state)))[0]["edge"]
    listener = next(x for x in edge["static_resources"]["listeners"] if x["name"] == "edge_http")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return dict(next(f for f in hcm["http_filters"] if f["name"] == "groundwork.grpc_one_message"))


def _round(name: str, pid: int) -> tuple[float, float]:
    """(CPU µs per call in that Envoy, calls per second)."""
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    load = h2load.Load(
        url=f"http://{ADDRESS}:{PORTS[name]}{PATH}",
        requests=CALLS,
        connections=8,
        streams=8,
        body=h2load.grpc_frame(b""),
        headers=h2load.GRPC_HEADERS,
    )
    figures = h2load.run(load)
    if figures.succeeded != CALLS:
        raise RuntimeError(f"{name}: {figures}")
    return (sum(process.cpu_times()[:2]) - before) / CALLS * 1e6, figures.per_second


def main() -> None:
    configs = {
        **bench_envoys.direct_config(ADDRESS, PORTS["bare"], "", name="bare"),
        **bench_envoys.direct_config(
            ADDRESS, PORTS["checked"], "", [_frame_check()], name="checked"
        ),
    }
    with bench_envoys.running(configs) as started:
        for name in configs:  # warm-up
            _round(name, started[name].pid)
        print(f"{CALLS:,} unary gRPC calls a round, 8 connections x 8 streams")
        for index in range(ROUNDS):
            figures = {name: _round(name, started[name].pid) for name in configs}
            (bare_cpu, bare_rate), (checked_cpu, checked_rate) = figures.values()
            print(
                f"round {index + 1}: bare {bare_cpu:.1f} µs CPU/call ({bare_rate:,.0f}/s), "
                f"with the frame check {checked_cpu:.1f} µs ({checked_rate:,.0f}/s): "
                f"+{checked_cpu - bare_cpu:.1f} µs a call"
            )


if __name__ == "__main__":
    main()
