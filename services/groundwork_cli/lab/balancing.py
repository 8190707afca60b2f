"""Load balancing: one Envoy in front of three replicas of one handler, one of them
slow (it waits 20 ms more per request), under each of Envoy's policies — round
robin, least request, random and ring hash (on the path; 64 keys in turn) —
loaded by h2load with many requests in flight: p50 and p99 for each, and the share
of requests the slow replica took.

The replicas are this module's own small servers, so the slow one is slow and
nothing else differs; the balancing is Envoy's, as in the mesh's sidecars."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from groundwork_cli import h2load
from groundwork_cli.lab.outcome import Outcome, Table
from groundwork_cli.runtime import probes
from groundwork_cli.runtime.plan import envoy_bin

HOST = "127.94.0.1"
FRONT, ADMIN, FIRST_REPLICA = 18300, 18301, 18310
SLOW_MS = 20
POLICIES = {
    "round robin": "ROUND_ROBIN",
    "least request": "LEAST_REQUEST",
    "random": "RANDOM",
    "ring hash": "RING_HASH",
}


def serve(port: int, extra_ms: int) -> None:
    """One replica: answers after 2 ms (and `extra_ms` more when it is the slow one)."""
    from aiohttp import web

    async def handler(_: web.Request) -> web.Response:
        await asyncio.sleep((2 + extra_ms) / 1000)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    web.run_app(app, host=HOST, port=port, print=None, access_log=None)


def _config(policy: str) -> str:
    endpoints = "".join(
        f"\n        - endpoint: {{address: {{socket_address: {{address: {HOST}, "
        f"port_value: {FIRST_REPLICA + i}}}}}}}"
        for i in range(3)
    )
    hash_policy = (
        '\n                  hash_policy: [{header: {header_name: ":path"}}]'
        if policy == "RING_HASH"
        else ""
    )
    manager = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    return f"""
admin: {{address: {{socket_address: {{address: {HOST}, port_value: {ADMIN}}}}}}}
static_resources:
  listeners:
  - name: front
    address: {{socket_address: {{address: {HOST}, port_value: {FRONT}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {manager}.HttpConnectionManager
          stat_prefix: front
          route_config:
            virtual_hosts:
            - name: front
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                route:
                  cluster: replicas
                  timeout: 15s{hash_policy}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: replicas
    type: STATIC
    lb_policy: {policy}
    load_assignment:
      cluster_name: replicas
      endpoints:
      - lb_endpoints:{endpoints}
"""


def _served(stats: str) -> list[int]:
    """Requests each replica answered, from the front Envoy's /clusters (per host)."""
    counts = [0, 0, 0]
    for line in stats.splitlines():
        found = re.match(rf"replicas::{re.escape(HOST)}:(\d+)::rq_total::(\d+)", line)
        if found:
            counts[int(found.group(1)) - FIRST_REPLICA] = int(found.group(2))
    return counts


@contextmanager
def _front(policy: str) -> Iterator[None]:
    """The balancing Envoy, under `policy`, until the block ends."""
    with tempfile.TemporaryDirectory() as directory:
        config, log_path = Path(directory) / "front.yaml", Path(directory) / "front.log"
        config.write_text(_config(policy))
        command = [str(envoy_bin()), "-c", str(config), "--disable-hot-restart", "-l", "warn"]
        with log_path.open("w") as log:
            front = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            try:
                ready = probes.http_health(f"{HOST}:{ADMIN}", "/ready")
                try:
                    asyncio.run(probes.wait_until(ready, 20, f"the {policy} Envoy"))
                except probes.NotReady as error:
                    raise RuntimeError(f"{error}\n{log_path.read_text()[-1500:]}") from error
                yield
            finally:
                front.terminate()
                front.wait(20)


@contextmanager
def _replicas() -> Iterator[None]:
    """Three replicas, the first one slow."""
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "groundwork_cli.lab.balancing"),
                *(str(FIRST_REPLICA + i), str(SLOW_MS if i == 0 else 0)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(3)
    ]
    try:
        for i in range(3):
            target = f"{HOST}:{FIRST_REPLICA + i}"
            asyncio.run(probes.wait_until(probes.http_health(target, "/"), 20, target))
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def run(quick: bool) -> Outcome:
    requests = 600 if quick else 6000
    # 64 keys (paths) taken in turn: ring hash pins each to one replica.
    keys = tuple(f"http://{HOST}:{FRONT}/?key={k}" for k in range(1, 64))
    load = h2load.Load(
        f"http://{HOST}:{FRONT}/", requests=requests, connections=8, streams=4, more_urls=keys
    )
    results: dict[str, dict[str, Any]] = {}
    with _replicas():
        for name, policy in POLICIES.items():
            with _front(policy):
                figures = h2load.run(load)
                served = _served(httpx.get(f"http://{HOST}:{ADMIN}/clusters").text)
            results[name] = {
                **figures.as_dict(),
                "served": served,
                "slow_share": served[0] / max(1, sum(served)),
            }
    table = Table(["policy", "req/s", "p50 ms", "p99 ms", "share to the slow replica"])
    for name, r in results.items():
        table.rows.append(
            [name, r["per_second"], r["p50_ms"], r["p99_ms"], f"{r['slow_share']:.1%}"]
        )

    def plot(axes: Any) -> None:
        names = list(results)
        axes.bar(names, [results[n]["p99_ms"] for n in names], color="#2451c8", label="p99")
        axes.bar(names, [results[n]["p50_ms"] for n in names], color="#18794e", label="p50")
        axes.set_ylabel(f"ms per request (one of three replicas +{SLOW_MS} ms)")
        axes.legend()

    least, robin = results["least request"], results["round robin"]
    return Outcome(
        name="balancing",
        title="Load balancing with one slow replica",
        table=table,
        figures={"slow_ms": SLOW_MS, "results": results},
        explanation=(
            f"Three replicas, one {SLOW_MS} ms slower. Round robin and random give it a third "
            f"of the requests whatever it does ({robin['slow_share']:.0%} here). Least request "
            "(Envoy's power of two choices: of two random hosts, the one with fewer requests "
            "in flight) sees its queue grow and sends it less "
            f"({least['slow_share']:.0%}): fewer clients of the closed loop wait on it, so the "
            f"same clients get {least['per_second']:,.0f} req/s against round robin's "
            f"{robin['per_second']:,.0f}. The median is a fast replica's under every policy "
            f"(p50 {robin['p50_ms']:.1f} and {least['p50_ms']:.1f} ms: the fast ones take "
            "the requests the slow one does not). The p99 stays the slow replica's as long as "
            "it takes more than 1% of the requests: only ejecting it (outlier detection) or a "
            "deadline "
            "with a retry elsewhere removes that tail. Ring hash keeps each key on one replica "
            "(what a cache wants) and so cannot steer around a slow one: the keys that hash to "
            "it stay slow."
        ),
        plot=plot,
    )


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
