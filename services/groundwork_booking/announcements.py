"""What booking tells the rest of the system, written to its outbox in the
caller's transaction (the relay publishes it on the booking stream)."""

from __future__ import annotations

import asyncpg

from groundwork.booking.v1 import events_pb2 as events
from groundwork_booking import STREAM
from groundwork_booking.repository import HoldRow, OrderRow
from groundwork_shared.events import envelope_for
from groundwork_shared.outbox import enqueue


async def seats_released(conn: asyncpg.Connection, row: HoldRow, reason: str) -> None:
    event = events.SeatsReleased(
        event_id=str(row.event_id), hold_id=str(row.hold_id), seat_ids=row.seat_ids, reason=reason
    )
    await enqueue(conn, STREAM, envelope_for(str(row.event_id), event))


async def order_cancelled(conn: asyncpg.Connection, order: OrderRow, reason: str) -> None:
    """The order is cancelled and its seats are free again: two events."""
    cancelled = events.OrderCancelled(
        order_id=str(order.order_id),
        event_id=str(order.event_id),
        user_id=order.user_id,
        reason=reason,
    )
    await enqueue(conn, STREAM, envelope_for(str(order.order_id), cancelled))
    released = events.SeatsReleased(
        event_id=str(order.event_id),
        hold_id=str(order.hold_id),
        seat_ids=order.seat_ids,
        reason=reason,
    )
    await enqueue(conn, STREAM, envelope_for(str(order.event_id), released))
