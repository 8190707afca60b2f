"""Ticketing's SQL: functions on a connection; the caller owns the transaction
(the bus consumer's, for issuing: a ticket and the event's mark commit together)."""

from __future__ import annotations

import asyncpg

from groundwork_ticketing.domain import Ticket


async def issue(conn: asyncpg.Connection, ticket: Ticket) -> None:
    """One ticket per seat of an order: a second issue of the same seat is a no-op."""
    await conn.execute(
        """INSERT INTO tickets (ticket_id, order_id, user_id, event_id, seat_id, token,
                                issued_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (order_id, seat_id) DO NOTHING""",
        ticket.ticket_id,
        ticket.order_id,
        ticket.user_id,
        ticket.event_id,
        ticket.seat_id,
        ticket.token,
        ticket.issued_at,
    )


async def tickets_of(conn: asyncpg.Connection, user_id: str, limit: int = 500) -> list[Ticket]:
    rows = await conn.fetch(
        """SELECT ticket_id, order_id, user_id, event_id, seat_id, token, issued_at FROM tickets
           WHERE user_id = $1 ORDER BY issued_at DESC, seat_id LIMIT $2""",
        user_id,
        limit,
    )
    return [Ticket(**dict(r)) for r in rows]
