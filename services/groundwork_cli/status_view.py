"""`groundwork status`: every figure read in one event loop, concurrently, then
rendered as one report. Each part that cannot be read says so in its own line;
the report is healthy only when every process runs and every cluster is whole."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from groundwork_cli.rpc_figures import figures
from groundwork_cli.runtime import mesh, probes
from groundwork_cli.runtime.plan import Plan
from groundwork_shared.bus import group_lags
from groundwork_shared.cache import hit_ratio
from groundwork_shared.redis import connect
from groundwork_waitingroom.repository import Figures, Rooms


@dataclass(frozen=True)
class Report:
    processes: list[mesh.ProcessStatus]
    clusters: dict[str, list[probes.ClusterHealth] | str]
    rpcs: list[tuple[str, str]]
    cache: str
    realtime: str
    waiting_rooms: str

    @property
    def healthy(self) -> bool:
        return all(p.state == "RUNNING" for p in self.processes) and all(
            not isinstance(c, str) and all(h.ok for h in c) for c in self.clusters.values()
        )

    def lines(self) -> list[str]:
        out = [f"{'PROCESS':<22}{'STATE':<10}{'PID':>8}  UPTIME"]
        out += [f"{p.name:<22}{p.state:<10}{p.pid:>8}  {p.uptime}" for p in self.processes]
        out.append(f"\n{'ENVOY':<22}{'CLUSTER':<22}HEALTHY")
        for envoy, clusters in self.clusters.items():
            if isinstance(clusters, str):
                out.append(f"{envoy:<22}{clusters}")
                continue
            for c in clusters:
                mark = "ok" if c.ok else "DEGRADED"
                out.append(f"{envoy:<22}{c.name:<22}{c.healthy}/{c.total} {mark}")
        out.append(f"\n{'SERVICE':<22}RPCS SINCE START")
        out += [f"{service:<22}{line}" for service, line in self.rpcs]
        out += [f"\n{self.cache}", self.realtime, self.waiting_rooms]
        out.append("\nall healthy" if self.healthy else "\nNOT all healthy")
        return out


async def read(plan: Plan) -> Report:
    processes = await asyncio.to_thread(mesh.process_status, plan)  # supervisord's XML-RPC
    clusters, rpcs, cache, realtime, rooms = await asyncio.gather(
        mesh.cluster_status(plan),
        _rpcs(plan),
        _cache(plan),
        _realtime(plan),
        _waiting_rooms(plan),
    )
    return Report(processes, clusters, rpcs, cache, realtime, rooms)


async def _rpcs(plan: Plan) -> list[tuple[str, str]]:
    """Each gRPC service's requests, errors and latency over all its instances."""

    async def metrics(client: httpx.AsyncClient, address: str) -> str:
        reply = await client.get(f"http://{address}:{plan.mesh.ports.metrics}/metrics")
        reply.raise_for_status()
        return reply.text

    async def service(client: httpx.AsyncClient, name: str, instances: int) -> str:
        addresses = [plan.profile.listen_address(name, i) for i in range(instances)]
        try:
            texts = await asyncio.gather(*(metrics(client, a) for a in addresses))
        except httpx.HTTPError as error:
            return f"unknown ({error!r})"
        return figures(texts).describe()

    grpc = [(n, s.instances) for n, s in plan.mesh.services.items() if s.protocol == "grpc"]
    async with httpx.AsyncClient(timeout=2) as client:
        lines = await asyncio.gather(*(service(client, n, i) for n, i in grpc))
    return [(n, line) for (n, _), line in zip(grpc, lines, strict=True)]


async def _cache(plan: Plan) -> str:
    """The catalog cache's hit ratio and every consumer group's lag on the bus."""
    redis = connect(plan.redis_url())
    try:
        hits, misses = await hit_ratio(redis, "catalog")
        lags = await group_lags(redis, "booking")
    except Exception as error:
        return f"catalog cache and bus: unknown ({error!r})"
    finally:
        await redis.aclose()
    total = hits + misses
    ratio = f"{hits / total:.0%}" if total else "n/a"
    groups = ", ".join(f"{g} {n}" for g, n in sorted(lags.items())) or "no consumer groups yet"
    return (
        f"catalog cache: {hits} hits, {misses} misses, hit ratio {ratio}\n"
        f"bus lag on stream booking: {groups}"
    )


async def _waiting_rooms(plan: Plan) -> str:
    """Each waiting room's queue, active sessions and admission rate, from Redis."""
    redis = connect(plan.redis_url())
    try:
        rooms = Rooms(redis)
        found = [await rooms.get(e) for e in await rooms.events()]
    except Exception as error:
        return f"waiting rooms: unknown ({error!r})"
    finally:
        await redis.aclose()
    figures_: list[Figures] = [f for f in found if f is not None]
    if not figures_:
        return "waiting rooms: none"
    lines = [
        f"  {f.room.event_id}  {'PAUSED ' if f.room.paused else ''}queue {f.queue_length}, "
        f"active {f.active}/{f.room.total_active_users}, admitted {f.served} "
        f"({f.admitted_last_minute} in the last minute), rate {f.rate_per_minute:.0f}/min "
        f"({f.room.mode.value}"
        + (f", booking p99 {f.observed_booking_p99_ms:.0f} ms" if f.observed_booking_p99_ms else "")
        + ")"
        for f in figures_
    ]
    return "waiting rooms:\n" + "\n".join(lines)


async def _realtime(plan: Plan) -> str:
    """Open WebSockets and slow clients dropped, per realtime instance."""

    async def one(process_name: str, listen: str, health_path: str) -> str:
        try:
            health = (await probes.http_get(listen, health_path)).json()
        except Exception as error:
            return f"{process_name} unknown ({error!r})"
        return (
            f"{process_name} {health['connections']} connections, "
            f"{health['dropped_slow_clients']} slow clients dropped"
        )

    parts = await asyncio.gather(
        *(
            one(p.name, p.listen, plan.mesh.services[p.service].health_path)
            for p in plan.services
            if plan.mesh.services[p.service].protocol == "websocket"
        )
    )
    return "websockets: " + ("; ".join(parts) or "no realtime instances")
