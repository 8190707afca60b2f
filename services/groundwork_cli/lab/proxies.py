"""Proxies: what each hop costs for one read (catalog's GetEvent over gRPC): the app
alone on its socket, one bare Envoy in front, two Envoys with mTLS between them
(a sidecar pair), the mesh's edge and sidecar; beside Envoy's own direct response.
The measurements are `groundwork bench mesh`'s public-read part (mesh_bench.py),
with the CPU each process spent per request read from /proc."""

from __future__ import annotations

from typing import Any

from groundwork.catalog.v1 import catalog_pb2
from groundwork_cli import bench_envoys, h2load, mesh_bench
from groundwork_cli.lab.outcome import Outcome, Table
from groundwork_cli.load import local_admin_token
from groundwork_cli.runtime.plan import Plan
from groundwork_loadtest.runner import new_event

L4_PORT = 18110


def _layer_four(bench: mesh_bench.Bench, group: str, event_id: str) -> None:
    """The same gRPC read through one tcp_proxy: L4, no HTTP parsed, one upstream
    connection per client connection (no pooling, no per-request balancing)."""
    plan = bench.plan
    address = plan.profile.edge_address()
    configs = bench_envoys.tcp_proxy_config("l4", address, L4_PORT, bench.app_socket("catalog"))
    message = catalog_pb2.GetEventRequest(event_id=event_id).SerializeToString()
    url = f"http://{address}:{L4_PORT}{mesh_bench.GET_EVENT}"
    load = bench.closed(url, body=h2load.grpc_frame(message), headers=h2load.GRPC_HEADERS)
    with bench_envoys.running(configs):
        bench.load(
            group, "one bare L4 proxy (tcp_proxy), gRPC", load, ("catalog", mesh_bench.GET_EVENT)
        )


def run(plan: Plan, quick: bool) -> Outcome:
    sizes = mesh_bench.Sizes(
        requests=300 if quick else 20_000,
        rate=100 if quick else 1000,
        rate_seconds=1 if quick else 5,
        idle_seconds=0,
        parts=("public",),
    )
    bench = mesh_bench.Bench(plan, sizes, mesh_bench.Meter.of_mesh(plan), lambda _: None)
    http = f"http://{plan.edge_http()}"
    event_id = new_event(http, local_admin_token(http), "Lab Proxies")
    mesh_bench.cached_read(bench, event_id, mesh_bench.bench_tls(plan))
    (group,) = [g for g in bench.rows if g.startswith("public read")]
    _layer_four(bench, group, event_id)
    rows = bench.rows[group]
    ceiling = rows[0].figures["per_second"]
    table = Table(["path", "req/s", "of the ceiling", "p50 ms", "p99 ms", "CPU ms/request (top 3)"])
    for row in rows:
        busiest = sorted(row.cpu_ms.items(), key=lambda item: -item[1])[:3]
        table.rows.append(
            [
                row.path,
                row.figures["per_second"],
                f"{row.figures['per_second'] / ceiling:.1%}",
                row.figures["p50_ms"],
                row.figures["p99_ms"],
                ", ".join(f"{name} {ms:.3f}" for name, ms in busiest),
            ]
        )
    latency = {
        row.path: row.figures
        for group_name, group_rows in bench.rows.items()
        if group_name.startswith("latency at")
        for row in group_rows
    }

    def plot(axes: Any) -> None:
        names = [row.path for row in rows]
        axes.barh(names, [row.figures["per_second"] for row in rows], color="#2451c8")
        axes.set_xscale("log")
        axes.set_xlabel("req/s (h2load, closed loop)")
        axes.invert_yaxis()
        axes.tick_params(axis="y", labelsize=8)

    by_path = {row.path: row.figures for row in rows}
    app, pair = by_path["app alone, gRPC"], by_path["two bare proxies + mTLS, gRPC"]
    edge = by_path["edge + sidecar, gRPC"]
    l4 = by_path["one bare L4 proxy (tcp_proxy), gRPC"]
    return Outcome(
        name="proxies",
        title="Proxies: the cost of each hop",
        table=table,
        figures={
            "closed_loop": {row.path: {**row.figures, "cpu_ms": row.cpu_ms} for row in rows},
            "latency_at_fixed_rate": latency,
        },
        explanation=(
            "Envoy answering by itself is the ceiling any path through it can reach. The "
            f"app alone serves {app['per_second']:,.0f} req/s (its Python is the bottleneck); "
            f"a pair of Envoys with mTLS between them, a sidecar pair, serves "
            f"{pair['per_second']:,.0f}; the edge and the catalog's sidecar, with routing, "
            f"transcoding filters and JWT checks on the path, {edge['per_second']:,.0f}. An L4 "
            f"proxy copying bytes (tcp_proxy) serves {l4['per_second']:,.0f}: it parses no HTTP, "
            "but it also cannot route, retry or balance per request. Each L7 hop "
            "adds a parse of the request, a connection pool lookup and, with mTLS, encryption: "
            "cheap beside the app's own work, which is why a mesh is affordable — and why the "
            "hop count, not the proxy, shows in the p99 at a fixed rate (the latency rows of "
            "the JSON)."
        ),
        plot=plot,
    )
