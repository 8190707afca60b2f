"""The seat-map read model: booking's events applied to event_seats and the
events' counters. Transitions are conditional (held only if available, and so
on), so a replayed or late event cannot corrupt the map."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from google.protobuf.message import Message

from groundwork.booking.v1 import events_pb2
from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.cache import Cache

# event type -> (payload message, from-states, to-state)
TRANSITIONS: dict[str, tuple[type[Message], tuple[str, ...], str]] = {
    "booking.seats_held": (events_pb2.SeatsHeld, ("available",), "held"),
    "booking.seats_released": (events_pb2.SeatsReleased, ("held",), "available"),
    "booking.order_paid": (events_pb2.OrderPaid, ("held", "available"), "sold"),
}


class SeatMapProjection:
    def __init__(self, cache: Cache | None = None) -> None:
        self._cache = cache

    async def apply(self, conn: asyncpg.Connection, event: Envelope) -> None:
        transition = TRANSITIONS.get(event.type)
        if transition is None:
            return  # not a seat event: nothing to do, but recorded as seen
        message_type, sources, target = transition
        payload: Any = message_type()
        event.payload.Unpack(payload)
        event_id = uuid.UUID(payload.event_id)
        changed = await conn.fetchval(
            """WITH moved AS (
                 UPDATE event_seats SET status = $4
                 WHERE event_id = $1 AND seat_id = ANY($2::text[]) AND status = ANY($3::text[])
                 RETURNING status)
               SELECT count(*) FROM moved""",
            event_id,
            list(payload.seat_ids),
            list(sources),
            target,
        )
        if changed:
            await conn.execute(
                """UPDATE events SET seats_available = (
                     SELECT count(*) FROM event_seats WHERE event_id = $1 AND status = 'available')
                   WHERE event_id = $1""",
                event_id,
            )
        if self._cache:
            # Before commit: a read in between may cache the old map, for at most its TTL.
            await self._cache.invalidate(f"seatmap:{event_id}", f"event:{event_id}")
