"""The seat-map read model: booking's events applied to event_seats and to each
event's availability (packed states, counters, version). Transitions are
conditional (held only if available, and so on), so a replayed or late event
cannot corrupt the map. The work is O(seats in the event's message): the seats'
own rows, one events row, one change record; never the event's other seats.

The catalog consumes booking's stream as one exclusive consumer (the other
instance stands by), so events are applied in stream order and the version (the
stream position of the last change) means "everything before it is applied"."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from google.protobuf.message import Message

from groundwork.booking.v1 import events_pb2
from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_catalog import availability
from groundwork_catalog.availability import Moved
from groundwork_catalog.domain import SeatStatus
from groundwork_shared import positions
from groundwork_shared.cache import Cache
from groundwork_shared.events import event_type

# event type (derived from the payload message) -> (payload message, from-states, to-state)
TRANSITIONS: dict[str, tuple[type[Message], tuple[SeatStatus, ...], SeatStatus]] = {
    event_type(message): (message, sources, target)
    for message, sources, target in (
        (events_pb2.SeatsHeld, (SeatStatus.AVAILABLE,), SeatStatus.HELD),
        (events_pb2.SeatsReleased, (SeatStatus.HELD,), SeatStatus.AVAILABLE),
        (events_pb2.OrderPaid, (SeatStatus.HELD, SeatStatus.AVAILABLE), SeatStatus.SOLD),
    )
}

# How long changes stay answerable by GetSeatAvailability(since_version=...).
CHANGES_KEPT_MS = 120_000

# The self-join reads each row as it was before this UPDATE changed it.
_MOVE = """
UPDATE event_seats s SET status = $4
FROM event_seats before
WHERE s.event_id = $1 AND s.seat_id = ANY($2::text[]) AND s.status = ANY($3::text[])
  AND before.event_id = s.event_id AND before.seat_id = s.seat_id
RETURNING s.seat_index, before.status
"""


class SeatMapProjection:
    def __init__(self, cache: Cache | None = None) -> None:
        self._cache = cache

    async def apply(self, conn: asyncpg.Connection, event: Envelope, position: str) -> None:
        transition = TRANSITIONS.get(event.type)
        if transition is None:
            return  # not a seat event: nothing to do, but recorded as seen
        message_type, sources, target = transition
        payload: Any = message_type()
        event.payload.Unpack(payload)
        event_id = uuid.UUID(payload.event_id)
        moved = [
            Moved(r["seat_index"], SeatStatus(r["status"]))
            for r in await conn.fetch(
                _MOVE, event_id, list(payload.seat_ids), [s.value for s in sources], target.value
            )
        ]
        if not moved:
            return
        version = positions.parse(position)
        # The seats' foreign key guarantees the row.
        states = await conn.fetchval(
            "SELECT seat_states FROM events WHERE event_id = $1 FOR UPDATE", event_id
        )
        states, deltas = availability.apply(states, moved, target)
        await conn.execute(
            """UPDATE events SET seat_states = $2,
                 seats_available = seats_available + $3, seats_held = seats_held + $4,
                 seats_sold = seats_sold + $5, seats_version_ms = $6, seats_version_seq = $7
               WHERE event_id = $1""",
            event_id,
            states,
            deltas[SeatStatus.AVAILABLE],
            deltas[SeatStatus.HELD],
            deltas[SeatStatus.SOLD],
            *version,
        )
        await conn.execute(
            """INSERT INTO seat_changes (event_id, version_ms, version_seq, seat_indexes, status)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            event_id,
            *version,
            [m.index for m in moved],
            target.value,
        )
        await conn.execute(
            "DELETE FROM seat_changes WHERE event_id = $1 AND version_ms < $2",
            event_id,
            version[0] - CHANGES_KEPT_MS,
        )
        if self._cache:
            # Before commit: a read in between may cache the old value, for at most its TTL.
            await self._cache.invalidate(f"event:{event_id}")
