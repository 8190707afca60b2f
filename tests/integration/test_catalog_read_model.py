"""Catalog's seat map follows booking's events, applied once each, through the
real bus (Redis Streams) into real Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis

from groundwork.booking.v1 import events_pb2
from groundwork_catalog import availability, repository
from groundwork_catalog.availability import ORIGIN
from groundwork_catalog.seed import seed
from groundwork_catalog.workers import SeatMapProjection
from groundwork_shared import positions
from groundwork_shared.bus import Consumer, ConsumerConfig, publish
from groundwork_shared.events import envelope


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
    consumer = Consumer(
        redis,
        catalog_db,
        ConsumerConfig(stream, "catalog", "c-0", block_ms=50),
        SeatMapProjection().apply,
    )
    await consumer.ensure_group()

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
