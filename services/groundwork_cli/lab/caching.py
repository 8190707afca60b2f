"""Caching: reads of one record with no cache (every read a query), cache-aside in
Redis (a miss reads Postgres and fills the key for a TTL), and the edge's
micro-cache in front of the real catalog; then a stampede — the key expires while
a crowd reads it — with and without single-flight (one reader refills the key under
a Redis lock while the others wait for it), counting the queries that reached
Postgres. The record lives in a scratch database; its query takes a few ms (a
join over a table of its own, as a real read model's would)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from groundwork_cli import h2load
from groundwork_cli.lab import scratch
from groundwork_cli.lab.outcome import Outcome, Table

QUERY = "SELECT count(*), sum(price) FROM seats WHERE event = $1 AND status = 'available'"
STEADY_TTL = 1.0
# The stampede's expiry is the DEL before the crowd arrives; a TTL far longer than
# the stampede keeps a second, natural expiry out of its count on a slow machine.
STAMPEDE_TTL = 60.0
CONCURRENCY = 8


class Reader:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, key: str, ttl: float) -> None:
        self.pool, self.redis, self.key, self.ttl = pool, redis, key, ttl
        self.queries = 0

    async def query(self) -> bytes:
        self.queries += 1
        row = await self.pool.fetchrow(QUERY, 1)
        return f"{row[0]}:{row[1]}".encode()

    async def uncached(self) -> bytes:
        return await self.query()

    async def cached(self) -> bytes | None:
        value = await self.redis.get(self.key)
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def cache_aside(self) -> bytes:
        if (cached := await self.cached()) is not None:
            return cached
        value = await self.query()
        await self.redis.set(self.key, value, px=int(self.ttl * 1000))
        return value

    async def single_flight(self) -> bytes:
        """Cache-aside where only the holder of a short Redis lock refills a miss; the
        others poll the key until it is back (or the lock lapses and one takes it)."""
        while True:
            if (cached := await self.cached()) is not None:
                return cached
            # The lease outlives any refill; it lapses only if its holder died.
            # redis-py's lock releases only its own token, never a later holder's.
            lock = self.redis.lock(f"{self.key}:lock", timeout=10, blocking=False)
            if await lock.acquire():
                try:
                    # Checked again under the lock: a reader that missed just before
                    # the previous holder refilled and released would query again.
                    if (cached := await self.cached()) is not None:
                        return cached
                    value = await self.query()
                    await self.redis.set(self.key, value, px=int(self.ttl * 1000))
                    return value
                finally:
                    await lock.release()
            await asyncio.sleep(0.002)


async def _timed(read: Any, count: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        await read()
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    for _ in range(count // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": statistics.quantiles(latencies, n=100)[98],
    }


async def _in_process(server_url: str, redis_url: str, reads: int, crowd: int) -> dict[str, Any]:
    async with scratch.database(server_url, "caching") as url:
        pool = await asyncpg.create_pool(url, min_size=4, max_size=16)
        # A connection for every reader of the crowd: they all miss at the same moment.
        redis = Redis.from_url(redis_url, max_connections=crowd + 16)
        key = f"lab:caching:{uuid.uuid4()}"
        try:
            await pool.execute(
                "CREATE TABLE seats (event integer, seat integer, status text, price bigint)"
            )
            await pool.execute(
                "INSERT INTO seats SELECT 1 + s % 4, s, CASE WHEN s % 3 = 0 THEN 'sold'"
                " ELSE 'available' END, 3900 + s % 7 * 1000 FROM generate_series(1, 200000) s"
            )
            await pool.execute("ANALYZE seats")
            reader = Reader(pool, redis, key, ttl=STEADY_TTL)
            steady: dict[str, Any] = {}
            for name, read in (
                ("no cache", reader.uncached),
                ("cache-aside (Redis, 1 s TTL)", reader.cache_aside),
            ):
                await redis.delete(key)
                reader.queries = 0
                figures = await _timed(read, reads, CONCURRENCY)
                done = reads // CONCURRENCY * CONCURRENCY
                steady[name] = {
                    **figures,
                    "queries": reader.queries,
                    "reads": done,
                    "concurrency": CONCURRENCY,
                }
                steady[name]["hit_ratio"] = 1 - reader.queries / done
                # How often the key can have expired during the phase: each expiry
                # costs at most one round of misses (CONCURRENCY queries).
                steady[name]["expiries"] = int(figures["seconds"] // STEADY_TTL)
            reader.ttl = STAMPEDE_TTL
            stampede: dict[str, Any] = {}
            for name, read in (
                ("without single-flight", reader.cache_aside),
                ("with single-flight", reader.single_flight),
            ):
                # Every reader's connection open first, so the crowd's reads meet at
                # once (new connections would stagger them by their set-up time).
                await asyncio.gather(*(redis.ping() for _ in range(crowd)))
                await redis.delete(key)  # the key expires as the crowd arrives
                reader.queries = 0
                started = time.perf_counter()
                await asyncio.gather(*(read() for _ in range(crowd)))
                stampede[name] = {
                    "crowd": crowd,
                    "queries": reader.queries,
                    "ms": (time.perf_counter() - started) * 1000,
                }
            return {"steady": steady, "stampede": stampede}
        finally:
            await redis.delete(key)
            await redis.aclose()
            await pool.close()


def run(server_url: str, redis_url: str, edge: str, quick: bool) -> Outcome:
    reads, crowd = (400, 50) if quick else (4000, 200)
    results = asyncio.run(_in_process(server_url, redis_url, reads, crowd))
    # The real catalog behind the edge: micro-cached REST against gRPC, which the
    # edge does not cache (catalog answers it from its Redis cache-aside).
    event = httpx.get(f"http://{edge}/v1/events", params={"page_size": 1}).json()["events"][0]
    requests = 300 if quick else 20_000
    edge_rows = {
        "edge micro-cache (REST)": h2load.run(
            h2load.Load(f"http://{edge}/v1/events/{event['event_id']}", requests=requests)
        ).as_dict(),
    }
    table = Table(["reads", "req/s", "p50 ms", "p99 ms", "queries to Postgres", "hit ratio"])
    for name, r in results["steady"].items():
        table.rows.append(
            [name, r["per_second"], r["p50_ms"], r["p99_ms"], r["queries"], f"{r['hit_ratio']:.1%}"]
        )
    for name, r in edge_rows.items():
        table.rows.append([name, r["per_second"], r["p50_ms"], r["p99_ms"], "", ""])
    for name, r in results["stampede"].items():
        table.rows.append([f"stampede of {r['crowd']}, {name}", "", "", r["ms"], r["queries"], ""])

    def plot(axes: Any) -> None:
        names = list(results["steady"]) + list(edge_rows)
        rates = [results["steady"][n]["per_second"] for n in results["steady"]] + [
            edge_rows[n]["per_second"] for n in edge_rows
        ]
        axes.bar(names, rates, color=["#b42318", "#e3a008", "#18794e"])
        axes.set_yscale("log")
        axes.set_ylabel("reads per second")
        axes.tick_params(axis="x", labelsize=8)

    stampede = results["stampede"]
    plain, flight = stampede["without single-flight"], stampede["with single-flight"]
    aside = results["steady"]["cache-aside (Redis, 1 s TTL)"]
    return Outcome(
        name="caching",
        title="Caching: none, cache-aside, the edge's micro-cache, and a stampede",
        table=table,
        figures={**results, "edge": edge_rows},
        explanation=(
            "Without a cache every read is a query. Cache-aside in Redis turns reads into "
            f"key lookups ({aside['hit_ratio']:.1%} hits with a 1 s TTL) and Postgres sees one "
            "query per TTL; the edge's micro-cache answers from Envoy's memory before any "
            "Python runs. The danger is the moment a hot key expires: "
            f"{plain['crowd']} readers arriving together all miss and send {plain['queries']} "
            f"queries at once; with single-flight one reader refills it and the others wait, "
            f"{flight['queries']} query. That is what protects the database in a flash sale."
        ),
        plot=plot,
    )
