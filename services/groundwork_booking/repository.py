"""Booking's transactions. Each function runs inside the caller's transaction.

How double booking is ruled out: a seat changes state only through a
conditional UPDATE on its own row (`... WHERE state = 'available'`). Under READ
COMMITTED, a second writer blocks on the row lock, then re-checks the condition
against the committed row and matches nothing. Holds touch rows in sorted
seat order, so overlapping holds wait for each other instead of deadlocking.
No SERIALIZABLE retries are needed because every decision is made by the
UPDATE that takes the lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from groundwork_booking.domain import (
    HoldNotActive,
    HoldRequest,
    HoldStatus,
    OrderStatus,
    SeatPrice,
    SeatsUnavailable,
)


@dataclass(frozen=True)
class HoldRow:
    hold_id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    seat_ids: list[str]
    status: HoldStatus
    expires_at: datetime


@dataclass(frozen=True)
class OrderRow:
    order_id: uuid.UUID
    hold_id: uuid.UUID
    user_id: str
    event_id: uuid.UUID
    seat_ids: list[str]
    amount_cents: int
    currency: str
    status: OrderStatus
    created_at: datetime
    pay_by: datetime


def _hold(row: asyncpg.Record) -> HoldRow:
    return HoldRow(
        row["hold_id"],
        row["user_id"],
        row["event_id"],
        list(row["seat_ids"]),
        HoldStatus(row["status"]),
        row["expires_at"],
    )


def _order(row: asyncpg.Record) -> OrderRow:
    return OrderRow(
        row["order_id"],
        row["hold_id"],
        row["user_id"],
        row["event_id"],
        list(row["seat_ids"]),
        row["amount_cents"],
        row["currency"],
        OrderStatus(row["status"]),
        row["created_at"],
        row["pay_by"],
    )


async def has_inventory(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM seats WHERE event_id = $1)", event_id)
    )


async def add_inventory(
    conn: asyncpg.Connection, event_id: uuid.UUID, seats: list[SeatPrice]
) -> None:
    """Idempotent: concurrent first bookings of an event insert the same rows once."""
    await conn.executemany(
        """INSERT INTO seats (event_id, seat_id, price_cents, currency) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING""",
        [(event_id, s.seat_id, s.price_cents, s.currency) for s in seats],
    )


async def hold_seats(
    conn: asyncpg.Connection, user_id: str, request: HoldRequest, ttl: timedelta
) -> HoldRow:
    hold_id = uuid.uuid4()
    row = await conn.fetchrow(
        """INSERT INTO holds (hold_id, user_id, event_id, seat_ids, expires_at)
           VALUES ($1, $2, $3, $4, now() + $5) RETURNING *""",
        hold_id,
        user_id,
        request.event_id,
        list(request.seat_ids),
        ttl,
    )
    taken = await conn.fetch(
        """UPDATE seats SET state = 'held', hold_id = $3
           WHERE event_id = $1 AND seat_id = ANY($2::text[]) AND state = 'available'
           RETURNING seat_id""",
        request.event_id,
        list(request.seat_ids),
        hold_id,
    )
    if len(taken) != len(request.seat_ids):
        missing = sorted(set(request.seat_ids) - {r["seat_id"] for r in taken})
        raise SeatsUnavailable(f"seats not available: {', '.join(missing)}")
    return _hold(row)


async def release(
    conn: asyncpg.Connection, hold_id: uuid.UUID, user_id: str | None, status: HoldStatus
) -> HoldRow | None:
    """Release an active hold (the user's own, or any for the sweeper) and free its
    seats. None when there is no such active hold."""
    row = await conn.fetchrow(
        """UPDATE holds SET status = $3 WHERE hold_id = $1 AND status = 'active'
             AND ($2::text IS NULL OR user_id = $2) RETURNING *""",
        hold_id,
        user_id,
        status.value,
    )
    if row is None:
        return None
    await conn.execute(
        """UPDATE seats SET state = 'available', hold_id = NULL
           WHERE hold_id = $1 AND state = 'held'""",
        hold_id,
    )
    return _hold(row)


async def expired_holds(conn: asyncpg.Connection, limit: int) -> list[uuid.UUID]:
    """Active holds past expiry, locked; SKIP LOCKED lets several sweepers share work."""
    rows = await conn.fetch(
        """SELECT hold_id FROM holds WHERE status = 'active' AND expires_at < now()
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [r["hold_id"] for r in rows]


async def get_hold(conn: asyncpg.Connection, hold_id: uuid.UUID) -> HoldRow | None:
    row = await conn.fetchrow("SELECT * FROM holds WHERE hold_id = $1", hold_id)
    return _hold(row) if row else None


async def create_order(
    conn: asyncpg.Connection,
    hold_id: uuid.UUID,
    user_id: str,
    pay_within: timedelta = timedelta(minutes=15),
) -> OrderRow:
    hold = await conn.fetchrow(
        """UPDATE holds SET status = 'converted'
           WHERE hold_id = $1 AND user_id = $2 AND status = 'active' AND expires_at > now()
           RETURNING *""",
        hold_id,
        user_id,
    )
    if hold is None:
        raise HoldNotActive("the hold is not active (released, expired, converted or not yours)")
    price = await conn.fetchrow(
        """SELECT sum(price_cents) AS amount, min(currency) AS currency FROM seats
           WHERE hold_id = $1""",
        hold_id,
    )
    row = await conn.fetchrow(
        """INSERT INTO orders (order_id, hold_id, user_id, event_id, seat_ids, amount_cents,
                               currency, pay_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8) RETURNING *""",
        uuid.uuid4(),
        hold_id,
        user_id,
        hold["event_id"],
        hold["seat_ids"],
        price["amount"],
        price["currency"],
        pay_within,
    )
    return _order(row)


async def get_order(conn: asyncpg.Connection, order_id: uuid.UUID) -> OrderRow | None:
    row = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id)
    return _order(row) if row else None


async def list_orders(conn: asyncpg.Connection, user_id: str, limit: int) -> list[OrderRow]:
    rows = await conn.fetch(
        """SELECT * FROM orders WHERE user_id = $1 ORDER BY created_at DESC, order_id LIMIT $2""",
        user_id,
        limit,
    )
    return [_order(r) for r in rows]


async def mark_paid(conn: asyncpg.Connection, order_id: uuid.UUID) -> OrderRow | None:
    """pending_payment -> paid, and its seats held -> sold, in the caller's transaction."""
    row = await conn.fetchrow(
        """UPDATE orders SET status = 'paid' WHERE order_id = $1 AND status = 'pending_payment'
           RETURNING *""",
        order_id,
    )
    if row is None:
        return None
    await conn.execute(
        "UPDATE seats SET state = 'sold' WHERE hold_id = $1 AND state = 'held'", row["hold_id"]
    )
    return _order(row)


async def cancel_overdue_orders(conn: asyncpg.Connection, limit: int) -> list[OrderRow]:
    """Cancel unpaid orders past their deadline and free their seats."""
    rows = await conn.fetch(
        """UPDATE orders SET status = 'cancelled'
           WHERE order_id IN (SELECT order_id FROM orders
                              WHERE status = 'pending_payment' AND pay_by < now()
                              ORDER BY pay_by LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING *""",
        limit,
    )
    for row in rows:
        await conn.execute(
            """UPDATE seats SET state = 'available', hold_id = NULL
               WHERE hold_id = $1 AND state = 'held'""",
            row["hold_id"],
        )
    return [_order(r) for r in rows]
