"""Payments' SQL: functions on a connection; the caller owns the transaction (the
idempotency key's, so a retry waits for the first outcome)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from groundwork_payments.domain import ChargeStatus, OrderAlreadyPaid


@dataclass(frozen=True)
class Charge:
    charge_id: uuid.UUID
    order_id: str
    amount_cents: int
    currency: str
    status: ChargeStatus
    decline_reason: str


async def order_paid(conn: asyncpg.Connection, order_id: str) -> bool:
    """Whether an approved charge of this order exists already."""
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM charges WHERE order_id = $1 AND status = $2)",
        order_id,
        ChargeStatus.APPROVED.value,
    )
    return bool(found)


async def record(conn: asyncpg.Connection, charge: Charge) -> None:
    """Insert the charge. A second approval of one order is refused by the partial
    unique index, which decides between concurrent pays that all passed
    `order_paid` before any of them committed."""
    try:
        await conn.execute(
            """INSERT INTO charges (charge_id, order_id, amount_cents, currency, status,
                                    decline_reason) VALUES ($1, $2, $3, $4, $5, $6)""",
            charge.charge_id,
            charge.order_id,
            charge.amount_cents,
            charge.currency,
            charge.status.value,
            charge.decline_reason,
        )
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != "one_approved_charge_per_order":
            raise
        raise OrderAlreadyPaid(charge.order_id) from error
