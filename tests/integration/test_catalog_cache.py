"""Cache-aside for catalog reads against real Redis: hits are counted, writes
invalidate, and a Redis outage only costs speed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from redis.asyncio import Redis

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork_catalog.seed import seed
from groundwork_catalog.service import CatalogService
from groundwork_shared.cache import Cache, hit_ratio
from groundwork_shared.messages import Serialized
from tests.callers import verified
from tests.conftest import settles


@pytest.fixture
async def seeded(catalog_db: asyncpg.Pool) -> asyncpg.Pool:
    async with catalog_db.acquire() as conn:
        await seed(conn, now=datetime.now(UTC))
    return catalog_db


async def test_reads_hit_the_cache_and_writes_invalidate(
    seeded: asyncpg.Pool, redis_server: str
) -> None:
    redis = Redis.from_url(redis_server)
    namespace = f"catalog-{uuid.uuid4().hex[:6]}"
    service = CatalogService(seeded, Cache(redis, namespace))
    event_id = str(await seeded.fetchval("SELECT event_id FROM events LIMIT 1"))
    request = pb.GetEventRequest(event_id=event_id)
    ctx = verified("admin-1", ["admin"])

    first = await service.GetEvent(request, ctx)
    await seeded.execute(
        "UPDATE events SET name = 'changed behind the cache' WHERE event_id = $1",
        uuid.UUID(event_id),
    )
    second = await service.GetEvent(request, ctx)
    # Served from the cache in its wire form, unparsed (the server sends it as is).
    assert isinstance(second, Serialized) and pb.Event.FromString(second.data) == first
    assert await hit_ratio(redis, namespace) == (1, 1)

    await service.UpdateEvent(
        pb.UpdateEventRequest(
            event_id=event_id, name="Renamed", update_mask=FieldMask(paths=["name"])
        ),
        ctx,
    )
    third = await service.GetEvent(request, ctx)
    assert isinstance(third, pb.Event) and third.name == "Renamed"  # invalidated by the write

    seat_map = await service.GetSeatMap(pb.GetSeatMapRequest(event_id=event_id), ctx)
    again = await service.GetSeatMap(pb.GetSeatMapRequest(event_id=event_id), ctx)
    assert isinstance(again, Serialized) and pb.SeatMap.FromString(again.data) == seat_map
    # A miss builds the map from the layout (cached too); a hit reads the map alone.
    assert await hit_ratio(redis, namespace) == (2, 4)
    await redis.aclose()


async def test_redis_down_costs_only_speed(seeded: asyncpg.Pool) -> None:
    dead = Redis.from_url("redis://127.78.2.99:6379/0", socket_connect_timeout=0.3)
    service = CatalogService(seeded, Cache(dead, "catalog"))
    event_id = str(await seeded.fetchval("SELECT event_id FROM events LIMIT 1"))
    event = await service.GetEvent(pb.GetEventRequest(event_id=event_id), verified("someone"))
    assert isinstance(event, pb.Event) and event.event_id == event_id


async def _joined(cache: Cache, expected: int) -> None:
    assert cache.joined == expected


async def test_concurrent_misses_of_a_key_share_one_load(redis_server: str) -> None:
    redis = Redis.from_url(redis_server)
    cache = Cache(redis, f"t-{uuid.uuid4().hex[:6]}")
    loads = 0
    release = asyncio.Event()

    async def load() -> pb.Event:
        nonlocal loads
        loads += 1
        await release.wait()
        return pb.Event(event_id="e-1", name="Hot")

    async def failing() -> pb.Event:
        nonlocal loads
        loads += 1
        await release.wait()
        raise RuntimeError("database down")

    try:
        readers = [
            asyncio.create_task(cache.get_or_load("hot", pb.Event, 5, load)) for _ in range(50)
        ]
        await settles(lambda: _joined(cache, 49))  # every other miss joined the one load
        release.set()
        replies = await asyncio.gather(*readers)
        assert loads == 1 and {r.name for r in replies if r} == {"Hot"}
        cached = await cache.get_or_load("hot", pb.Event, 5, load)
        assert cached is not None and cached.name == "Hot" and loads == 1

        release.clear()
        failing_readers = [
            asyncio.create_task(cache.get_or_load("cold", pb.Event, 5, failing)) for _ in range(5)
        ]
        await settles(lambda: _joined(cache, 49 + 4))
        release.set()
        outcomes = await asyncio.gather(*failing_readers, return_exceptions=True)
        assert loads == 2 and all(isinstance(o, RuntimeError) for o in outcomes)
    finally:
        await redis.aclose()


async def _evalsha_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_reads_of_a_key_share_one_round_trip(redis_server: str) -> None:
    """A crowd on one hot key costs Redis one read, and the hit counters still
    count every reader (the shared ones ride on the next read)."""
    redis = Redis.from_url(redis_server)
    namespace = f"t-{uuid.uuid4().hex[:6]}"
    cache = Cache(redis, namespace)
    stored = pb.Event(event_id="e-1", name="Hot")

    async def load() -> pb.Event:
        return stored

    try:
        await cache.serialized_or_load("hot", 60, load)  # a miss, which stores it
        before = await _evalsha_calls(redis)
        replies = await asyncio.gather(
            *(cache.serialized_or_load("hot", 60, load) for _ in range(50))
        )
        assert await _evalsha_calls(redis) - before == 1
        assert cache.shared_reads == 49
        assert {r.data for r in replies if isinstance(r, Serialized)} == {
            stored.SerializeToString()
        } and len(replies) == 50
        await cache.serialized_or_load("hot", 60, load)  # carries the 49 shared hits
        assert await hit_ratio(redis, namespace) == (1 + 50, 1)
    finally:
        await redis.aclose()
