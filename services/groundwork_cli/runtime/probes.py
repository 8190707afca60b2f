"""Health probes the runtime gates each start-up step on, and `status` reports."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from groundwork_cli.runtime import envoy_admin

Probe = Callable[[], Awaitable[None]]


class NotReady(Exception):
    pass


async def wait_until(
    probe: Probe, timeout: float, what: str, process: subprocess.Popen[Any] | None = None
) -> None:
    """Retry `probe` until it passes; raise NotReady naming `what` with the last error,
    at once if `process` (the server probed) has exited: nothing will answer then."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            since = f" (last probe: {last!r})" if last else ""
            raise NotReady(f"{what} exited with status {process.returncode}{since}")
        try:
            await asyncio.wait_for(probe(), timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            return
        except Exception as error:
            last = error
        await asyncio.sleep(0.25)
    raise NotReady(f"{what} not healthy after {timeout:.0f}s: {last!r}")


def postgres(url: str) -> Probe:
    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=2)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return probe


def redis(url: str) -> Probe:
    async def probe() -> None:
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            if not await client.ping():
                raise NotReady("PING failed")
        finally:
            await client.aclose()

    return probe


def grpc_health(target: str, service: str) -> Probe:
    async def probe() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                raise NotReady(f"{target} {service}: {reply.status}")

    return probe


async def http_get(target: str, path: str) -> httpx.Response:
    """GET `path` from an app on host:port or unix:/socket."""
    if target.startswith("unix:"):
        transport = httpx.AsyncHTTPTransport(uds=target[len("unix:") :])
        base = "http://app"
    else:
        transport = httpx.AsyncHTTPTransport()
        base = f"http://{target}"
    async with httpx.AsyncClient(transport=transport, timeout=2) as client:
        return await client.get(base + path)


def tcp(host: str, port: int) -> Probe:
    """Something accepts connections on host:port."""

    async def probe() -> None:
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()

    return probe


def http_health(target: str, path: str) -> Probe:
    """Healthy when GET `path` answers 200."""

    async def probe() -> None:
        reply = await http_get(target, path)
        if reply.status_code != 200:
            raise NotReady(f"{target}{path}: {reply.status_code} {reply.text[:200]}")

    return probe


@dataclass(frozen=True)
class ClusterHealth:
    name: str
    healthy: int
    total: int

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.healthy == self.total


def _host_healthy(host: dict[str, Any]) -> bool:
    status = host.get("health_status", {})
    failing = any(value is True for key, value in status.items() if key != "eds_health_status")
    return not failing and status.get("eds_health_status", "HEALTHY") == "HEALTHY"


async def envoy_clusters(admin: str) -> list[ClusterHealth]:
    async with envoy_admin.async_client(admin) as client:
        reply = await client.get("/clusters", params={"format": "json"})
        reply.raise_for_status()
    result = []
    for cluster in reply.json().get("cluster_statuses", []):
        hosts = cluster.get("host_statuses", [])
        result.append(
            ClusterHealth(cluster["name"], sum(_host_healthy(h) for h in hosts), len(hosts))
        )
    return result


def envoy_ready(admin: str, clusters: list[str]) -> Probe:
    """Envoy is live and every host of the named clusters passes its health checks."""

    async def probe() -> None:
        async with envoy_admin.async_client(admin) as client:
            reply = await client.get("/ready")
            if reply.status_code != 200:
                raise NotReady(f"{admin}/ready: {reply.status_code}")
        health = {c.name: c for c in await envoy_clusters(admin)}
        for name in clusters:
            if name not in health or not health[name].ok:
                raise NotReady(f"cluster {name}: {health.get(name)}")

    return probe
