"""Catalog's seat map follows booking's events, applied once each, through the
real bus (Redis Streams) into real Postgres; a new event's version starts at the
stream's head."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import grpc
from redis.asyncio import Redis

from groundwork.booking.v1 import events_pb2
from groundwork.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from groundwork_catalog import availability, repository
from groundwork_catalog.availability import ORIGIN
from groundwork_catalog.seed import seed
from groundwork_catalog.service import CatalogService
from groundwork_catalog.workers import SeatMapProjection
from groundwork_cli.runtime import probes
from groundwork_shared import positions
from groundwork_shared.bus import Consumer, ConsumerConfig, publish, stream_head
from groundwork_shared.events import envelope
from groundwork_shared.server import App, serve
from groundwork_shared.settings import ServiceSettings
from tests.callers import verified_metadata


async def _projection(redis: Redis, catalog_db: asyncpg.Pool, stream: str) -> Consumer:
    """catalog's seat-map consumer on `stream`, polled by the test."""
    consumer = Consumer(
        redis,
        catalog_db,
        ConsumerConfig(stream, "catalog", "c-0", block_ms=50),
        SeatMapProjection().apply,
    )
    await consumer.ensure_group()
    return consumer


async def test_seat_events_drive_the_seat_map(catalog_db: asyncpg.Pool, redis_server: str) -> None:
    async with catalog_db.acquire() as conn:
        await seed(conn, now=datetime.now(UTC))
    event_id = await catalog_db.fetchval("SELECT event_id FROM events LIMIT 1")
    total = await catalog_db.fetchval(
        "SELECT seats_available FROM events WHERE event_id = $1", event_id
    )
    seats = ["FLOOR-R01-001", "FLOOR-R01-002"]
    stream = f"booking-{uuid.uuid4().hex[:6]}"
    redis = Redis.from_url(redis_server)
    held = envelope(
        "booking.seats_held",
        str(event_id),
        events_pb2.SeatsHeld(event_id=str(event_id), hold_id="h1", seat_ids=seats),
    )
    await publish(redis, stream, held)
    await publish(redis, stream, held)  # redelivered duplicate
    consumer = await _projection(redis, catalog_db, stream)

    async def statuses() -> dict[str, str]:
        rows = await catalog_db.fetch(
            "SELECT seat_id, status FROM event_seats WHERE event_id = $1 AND seat_id = ANY($2)",
            event_id,
            seats,
        )
        return {r["seat_id"]: r["status"] for r in rows}

    async def available() -> int:
        return int(
            await catalog_db.fetchval(
                "SELECT seats_available FROM events WHERE event_id = $1", event_id
            )
        )

    while await consumer.poll():
        pass
    assert set((await statuses()).values()) == {"held"}
    assert await available() == total - 2
    assert consumer.applied == 1

    await publish(
        redis,
        stream,
        envelope(
            "booking.seats_released",
            str(event_id),
            events_pb2.SeatsReleased(
                event_id=str(event_id), hold_id="h1", seat_ids=seats[1:], reason="expired"
            ),
        ),
    )
    await publish(
        redis,
        stream,
        envelope(
            "booking.order_paid",
            "o1",
            events_pb2.OrderPaid(order_id="o1", event_id=str(event_id), seat_ids=seats[:1]),
        ),
    )
    while await consumer.poll():
        pass
    assert await statuses() == {"FLOOR-R01-001": "sold", "FLOOR-R01-002": "available"}
    assert await available() == total - 1

    # The availability agrees with the rows, at the last applied stream position,
    # and each change since the first is kept for incremental reads.
    row = await catalog_db.fetchrow(
        """SELECT seat_states, seats_available, seats_held, seats_sold, seats_version_ms,
                  seats_version_seq FROM events WHERE event_id = $1""",
        event_id,
    )
    seat_rows = await catalog_db.fetch(
        "SELECT seat_index, status FROM event_seats WHERE event_id = $1 ORDER BY seat_index",
        event_id,
    )
    states = availability.unpack(row["seat_states"], len(seat_rows))
    assert [s.value for s in states] == [r["status"] for r in seat_rows]
    assert (row["seats_available"], row["seats_held"], row["seats_sold"]) == (total - 1, 0, 1)
    entries: Any = await redis.xrevrange(stream, count=1)
    newest = entries[0][0].decode()
    assert (row["seats_version_ms"], row["seats_version_seq"]) == positions.parse(newest)
    async with catalog_db.acquire() as conn:
        changes = await repository.get_changes(conn, event_id, ORIGIN, 10)
    assert changes is None  # ORIGIN is older than the first change kept
    first = await catalog_db.fetchrow(
        "SELECT version_ms, version_seq FROM seat_changes WHERE event_id = $1 "
        "ORDER BY version_ms, version_seq LIMIT 1",
        event_id,
    )
    since = (first["version_ms"], first["version_seq"])
    async with catalog_db.acquire() as conn:
        later = await repository.get_changes(conn, event_id, since, 10)
    assert later is not None and [(c.seat_indexes, c.status.value) for c in later] == [
        ([1], "available"),
        ([0], "sold"),
    ]
    await redis.aclose()


async def test_a_new_event_starts_at_the_booking_streams_head(
    catalog_db: asyncpg.Pool, redis_server: str
) -> None:
    """A live client opens a new event's updates from its availability version: at
    ORIGIN, realtime would scan the whole booking stream before it says `ready`."""
    async with catalog_db.acquire() as conn:
        await seed(conn, now=datetime.now(UTC))
    venue_id, section = await catalog_db.fetchrow(
        "SELECT venue_id, min(section) FROM venue_seats GROUP BY venue_id LIMIT 1"
    )
    sections = [
        r["section"]
        for r in await catalog_db.fetch(
            "SELECT DISTINCT section FROM venue_seats WHERE venue_id = $1", venue_id
        )
    ]
    stream = f"booking-{uuid.uuid4().hex[:6]}"
    redis = Redis.from_url(redis_server)
    other = str(await catalog_db.fetchval("SELECT event_id FROM events LIMIT 1"))
    for n in range(3):  # what the stream holds from before the event exists
        await publish(
            redis,
            stream,
            envelope(
                "booking.seats_held",
                other,
                events_pb2.SeatsHeld(event_id=other, hold_id=f"h{n}", seat_ids=[]),
            ),
        )
    service = CatalogService(catalog_db, booking_head=partial(stream_head, redis, stream))
    listen = "127.78.3.2:50051"
    stop = asyncio.Event()
    app = App(
        ["groundwork.catalog.v1.CatalogService"],
        lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(service, s),
    )
    task = asyncio.create_task(
        serve(ServiceSettings(instance_id="catalog-test", grpc_listen=listen), app, stop)
    )
    await probes.wait_until(
        probes.grpc_health(listen, "groundwork.catalog.v1.CatalogService"), 10, "catalog"
    )
    admin = verified_metadata("admin-1", ["admin"])
    try:
        async with grpc.aio.insecure_channel(listen) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            request = catalog_pb2.CreateEventRequest(
                venue_id=str(venue_id),
                name="Fresh",
                section_prices=dict.fromkeys(sections, 5000),
                idempotency_key=f"create-{uuid.uuid4()}",
            )
            request.starts_at.FromDatetime(datetime.now(UTC) + timedelta(days=30))
            event = await stub.CreateEvent(request, metadata=admin)
            fresh = await stub.GetSeatAvailability(
                catalog_pb2.GetSeatAvailabilityRequest(event_id=event.event_id)
            )
            assert fresh.version == await stream_head(redis, stream) != positions.ORIGIN

            # Its first change is after that head: a client at the version misses nothing.
            consumer = await _projection(redis, catalog_db, stream)
            seat = await catalog_db.fetchval(
                "SELECT seat_id FROM event_seats WHERE event_id = $1 AND section = $2 LIMIT 1",
                uuid.UUID(event.event_id),
                section,
            )
            held = await publish(
                redis,
                stream,
                envelope(
                    "booking.seats_held",
                    event.event_id,
                    events_pb2.SeatsHeld(event_id=event.event_id, hold_id="h", seat_ids=[seat]),
                ),
            )
            while await consumer.poll():
                pass
            changed = await stub.GetSeatAvailability(
                catalog_pb2.GetSeatAvailabilityRequest(event_id=event.event_id)
            )
            assert positions.parse(changed.version) == positions.parse(held)
            assert positions.parse(held) > positions.parse(fresh.version)
    finally:
        stop.set()
        await task
        await redis.aclose()
