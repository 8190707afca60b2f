"""What the waiting room's check costs a hold, side by side in one run, on the
path booking's check takes (booking-0's sidecar, mTLS, the callee's sidecar):
AdmissionService.CheckAdmission against catalog's GetEvent (a cached read),
alternating, 2,000 sequential calls a round after 200 of warm-up.

    .venv/bin/python -m tests.bench_admission_check [STATE_DIR]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from groundwork.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from groundwork.waitingroom.v1 import admission_pb2, admission_pb2_grpc
from tests import edge_flows
from tests.e2e.conftest import make_mesh

CALLS, WARM_UP, ROUNDS = 2000, 200, 3


async def _round(outbound: str, label: str, event: str) -> tuple[float, float]:
    authority = "waitingroom" if label == "CheckAdmission" else "catalog"
    channel = grpc.aio.insecure_channel(outbound, options=[("grpc.default_authority", authority)])
    call: Callable[[], Awaitable[Any]]
    if label == "CheckAdmission":
        room = admission_pb2_grpc.AdmissionServiceStub(channel)
        ask = admission_pb2.CheckAdmissionRequest(event_id=event, user_id="bench")
        call = lambda: room.CheckAdmission(ask, timeout=5)  # noqa: E731
    else:
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        read = catalog_pb2.GetEventRequest(event_id=event)
        call = lambda: catalog.GetEvent(read, timeout=5)  # noqa: E731
    for _ in range(WARM_UP):
        await call()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    await channel.close()
    return statistics.median(times) * 1e6, sorted(times)[int(0.99 * CALLS)] * 1e6


def main() -> None:
    state = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/groundwork-bench-admission")
    mesh = make_mesh(state, 92)
    with mesh.running():
        admin = mesh.admin_token()
        event = edge_flows.new_event(mesh.http, admin)
        edge_flows.create_room(mesh.http, admin, event, paused=True)
        outbound = f"unix:{mesh.plan.layout.run / 'apps' / 'booking-0.out.sock'}"
        for _ in range(ROUNDS):
            for label in ("CheckAdmission", "GetEvent"):
                p50, p99 = asyncio.run(_round(outbound, label, event))
                print(f"{label:15} p50 {p50:6.0f} us  p99 {p99:6.0f} us")


if __name__ == "__main__":
    main()
