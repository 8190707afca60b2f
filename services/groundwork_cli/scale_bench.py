"""`groundwork bench scale`: the throughput each added instance of a service
buys, until the cores are full. The mesh is restarted with 1, 2, ... N instances
of the service (GROUNDWORK_INSTANCES, the setting a user scales with), and each
round loads the same read through the edge with h2load, reading how busy the
machine was (/proc/stat) and every process's CPU per request. The mesh is left
as it was found: restarted with its own settings at the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from groundwork_cli import h2load
from groundwork_cli.mesh_bench import Meter, cpu_per_request
from groundwork_cli.runtime import mesh
from groundwork_cli.runtime.plan import build
from groundwork_cli.runtime.settings import RuntimeSettings

Say = Callable[[str], None]

# The read each service answers, through the edge (REST), per event.
READS = {"catalog": "/v1/events/{event_id}"}


def _first_event(http: str) -> str:
    reply = httpx.get(f"{http}/v1/events", params={"page_size": 1}, timeout=30)
    reply.raise_for_status()
    return str(reply.json()["events"][0]["event_id"])


def run(
    settings: RuntimeSettings,
    service: str,
    most: int,
    requests: int,
    say: Say,
) -> dict[str, Any]:
    if service not in READS:
        raise ValueError(f"no read to scale for {service!r}; one of: {', '.join(READS)}")
    rounds: list[dict[str, Any]] = []
    timeout = settings.start_timeout
    current = build(settings)
    try:
        for count in range(1, most + 1):
            mesh.down(current, lambda _: None)
            current = build(
                settings.model_copy(update={"instances": {**settings.instances, service: count}})
            )
            mesh.up(current, timeout, lambda _: None)
            http = f"http://{current.edge_http()}"
            url = http + READS[service].format(event_id=_first_event(http))
            h2load.run(h2load.Load(url, requests=min(requests, 2000)))  # warm the caches
            meter = Meter.of_mesh(current)
            cpu = meter.snapshot()
            psutil.cpu_percent()  # starts the machine-wide interval
            started = time.monotonic()
            figures = h2load.run(h2load.Load(url, requests=requests))
            busy = psutil.cpu_percent()
            per_request = cpu_per_request(cpu, meter.snapshot(), figures.succeeded)
            row = {
                "instances": count,
                **figures.as_dict(),
                "seconds": round(time.monotonic() - started, 2),
                "machine_busy_percent": busy,
                "cpu_ms_per_request": per_request,
                "gain_over_one": round(figures.per_second / rounds[0]["per_second"], 2)
                if rounds
                else 1.0,
            }
            rounds.append(row)
            say(_line(row, service))
    finally:
        mesh.down(current, lambda _: None)
        mesh.up(build(settings), timeout, lambda _: None)
    return {"service": service, "cores": psutil.cpu_count(), "rounds": rounds}


def _line(row: dict[str, Any], service: str) -> str:
    apps = sum(ms for name, ms in row["cpu_ms_per_request"].items() if name.startswith(service))
    return (
        f"  {row['instances']} x {service}: {row['per_second']:>8,.0f} req/s "
        f"(x{row['gain_over_one']:.2f} of one)  p50 {row['p50_ms']:.1f} ms  "
        f"p99 {row['p99_ms']:.1f} ms  machine {row['machine_busy_percent']:.0f}% busy  "
        f"{service} CPU {apps:.2f} ms/req, non-2xx {row['non_2xx']}"
    )
