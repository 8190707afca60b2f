"""Traffic is balanced across both catalog instances, and an instance that dies
or is stopped is routed around (edge retries, health checks, outlier detection)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal

import httpx

from groundwork_cli.runtime import probes, supervisor
from tests.conftest import eventually
from tests.e2e.conftest import Mesh


async def _burst(mesh: Mesh, count: int, concurrency: int = 8) -> collections.Counter[str]:
    """`count` reads through the edge; every one must succeed. Counts who served them."""
    served: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=mesh.http, timeout=10) as client:

        async def one() -> None:
            async with limit:
                reply = await client.get("/v1/events", params={"page_size": 2})
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text}")
                served[reply.headers.get("x-groundwork-instance", "?")] += 1

        await asyncio.gather(*(one() for _ in range(count)))
    assert not failures, failures
    return served


def _wait_all_healthy(mesh: Mesh) -> None:
    """Every cluster of every Envoy (edge and sidecars) sees all its hosts healthy."""

    async def all_healthy() -> None:
        for envoy, admin in mesh.plan.admin_addresses().items():
            clusters = await probes.envoy_clusters(admin)
            assert all(c.ok for c in clusters), (envoy, clusters)

    asyncio.run(probes.wait_until(all_healthy, 60, "every Envoy cluster"))


def test_both_instances_receive_traffic(mesh: Mesh) -> None:
    served = asyncio.run(_burst(mesh, 60))
    assert set(served) == {"catalog-0", "catalog-1"}, served


def test_a_killed_instance_is_routed_around(mesh: Mesh) -> None:
    rpc = supervisor.client(mesh.plan.layout)
    pid = rpc.getProcessInfo("catalog-1")["pid"]
    os.kill(pid, signal.SIGKILL)
    # The supervisor restarts it within seconds; meanwhile every request must succeed.
    served = asyncio.run(_burst(mesh, 120, concurrency=4))
    assert served["catalog-0"] > 0
    eventually(lambda: rpc.getProcessInfo("catalog-1")["pid"] not in (0, pid), timeout=30)
    _wait_all_healthy(mesh)


def test_a_stopped_instance_gets_no_traffic_and_nothing_fails(mesh: Mesh) -> None:
    rpc = supervisor.client(mesh.plan.layout)
    rpc.stopProcess("catalog-1", True)
    try:
        asyncio.run(_burst(mesh, 60, concurrency=4))

        # Once health checks have noticed, the edge reports the host unhealthy.
        def degraded() -> bool:
            clusters = asyncio.run(probes.envoy_clusters(mesh.plan.edge_admin()))
            catalog = next(c for c in clusters if c.name == "catalog")
            return catalog.healthy == 1 and catalog.total == 2

        eventually(degraded, timeout=15)
        served = asyncio.run(_burst(mesh, 40))
        assert set(served) == {"catalog-0"}, served
    finally:
        rpc.startProcess("catalog-1", True)
    # Back in rotation once its health checks pass and its ejection (if any) expires.
    _wait_all_healthy(mesh)
    eventually(lambda: "catalog-1" in asyncio.run(_burst(mesh, 20)), timeout=40, interval=1)
