"""`groundwork bench scale`: the throughput each added instance of a service
buys, until the cores are full. The mesh is restarted with 1 (or, for a service
with a canary, canary + 1), 2, ... N instances
of the service (GROUNDWORK_INSTANCES, the setting a user scales with), and each
round loads the same read through the edge with h2load, reading how busy the
machine was (/proc/stat) and every process's CPU per request. The mesh is left
as it was found: restarted with its own settings at the end."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil

from groundwork_cli import h2load
from groundwork_cli.mesh_bench import GET_EVENT, Meter, app_calls, cpu_per_request
from groundwork_cli.runtime import mesh
from groundwork_cli.runtime.plan import build
from groundwork_cli.runtime.settings import RuntimeSettings

Say = Callable[[str], None]


def _get_event(http: str) -> bytes:
    from groundwork.catalog.v1 import catalog_pb2

    return catalog_pb2.GetEventRequest(event_id=_first_event(http)).SerializeToString()


# The uncached read each service answers through the edge, as native gRPC (the
# edge's micro-cache answers the REST one, and would hide what the instances do):
# its method, and its request for a mesh at this URL.
READS: dict[str, tuple[str, Callable[[str], bytes]]] = {"catalog": (GET_EVENT, _get_event)}


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
    # A service with a canary needs a stable instance beside it.
    fewest = current.mesh.services[service].canary + 1
    if most < fewest:
        raise ValueError(f"{service} runs at least {fewest} instances (its canary and one more)")
    try:
        for count in range(fewest, most + 1):
            mesh.down(current, lambda _: None)
            current = build(
                settings.model_copy(update={"instances": {**settings.instances, service: count}})
            )
            mesh.up(current, timeout, lambda _: None)
            http = f"http://{current.edge_http()}"
            method, request = READS[service]
            load = h2load.Load(
                http + method,
                requests=requests,
                body=h2load.grpc_frame(request(http)),
                headers=h2load.GRPC_HEADERS,
            )
            h2load.run(dataclasses.replace(load, requests=min(requests, 1000)))  # warm up
            meter = Meter.of_mesh(current)
            cpu, answered = meter.snapshot(), app_calls(current, service, method)
            psutil.cpu_percent()  # starts the machine-wide interval
            started = time.monotonic()
            figures = h2load.run(load)
            busy = psutil.cpu_percent()
            per_request = cpu_per_request(cpu, meter.snapshot(), figures.succeeded)
            # h2load sees a gRPC error as a 200: the instances' own counters say.
            ok = app_calls(current, service, method).get("OK", 0) - answered.get("OK", 0)
            row = {
                "instances": count,
                **figures.as_dict(),
                "non_2xx": figures.non_2xx + max(0, figures.succeeded - ok),
                "seconds": round(time.monotonic() - started, 2),
                "machine_busy_percent": busy,
                "cpu_ms_per_request": per_request,
                "gain_over_fewest": round(figures.per_second / rounds[0]["per_second"], 2)
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
        f"(x{row['gain_over_fewest']:.2f})  p50 {row['p50_ms']:.1f} ms  "
        f"p99 {row['p99_ms']:.1f} ms  machine {row['machine_busy_percent']:.0f}% busy  "
        f"{service} CPU {apps:.2f} ms/req, non-2xx {row['non_2xx']}"
    )
