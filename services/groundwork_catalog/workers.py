"""Catalog's background work: the seat-map read model, booking's events applied
to event_seats and to each event's availability (packed states, counters,
version). Transitions are conditional (held only if available, and so on), so a
replayed or late event cannot corrupt the map. The work is O(seats in the
event's message): the seats' own rows, one events row, one change record; never
the event's other seats.

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
from groundwork_catalog import availability, repository
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
        moved = await repository.move_seats(conn, event_id, list(payload.seat_ids), sources, target)
        if not moved:
            return
        version = positions.parse(position)
        states = await repository.lock_seat_states(conn, event_id)
        states, deltas = availability.apply(states, moved, target)
        await repository.record_availability(conn, event_id, states, deltas, version)
        await repository.record_change(conn, event_id, version, [m.index for m in moved], target)
        await repository.forget_changes_before(conn, event_id, version[0] - CHANGES_KEPT_MS)
        if self._cache:
            # Before commit: a read in between may cache the old value, for at most its TTL.
            await self._cache.invalidate(f"event:{event_id}")
