"""Payments against real Postgres, and booking's PayOrder through the real
payments service (in process)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from groundwork.booking.v1 import booking_pb2 as bpb
from groundwork.payments.v1 import payments_pb2 as pb
from groundwork_booking import MIGRATIONS as BOOKING_MIGRATIONS
from groundwork_booking.domain import PaymentDeclined
from groundwork_booking.service import BookingService
from groundwork_payments import MIGRATIONS
from groundwork_payments.provider import APPROVE, DECLINE, TIMEOUT, Network, PaymentsSettings
from groundwork_payments.service import PaymentsService
from groundwork_shared.database import database_url, ensure_database
from groundwork_shared.errors import AlreadyExists, Unavailable
from groundwork_shared.migrations import migrate
from tests.integration.rooms import RoomAdmissions
from tests.integration.test_booking import EVENT, _Seats, hold, who


@pytest.fixture
async def payments_db(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(fresh_database, Path(MIGRATIONS))
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()


def payments(pool: asyncpg.Pool, **settings: Any) -> PaymentsService:
    config = PaymentsSettings(payments_latency_ms=0, payments_timeout_seconds=0.2, **settings)
    return PaymentsService(pool, Network(config, random.Random(7)))


def charge(card: str, key: str | None = None, order: str = "order-1") -> pb.ChargeRequest:
    return pb.ChargeRequest(
        idempotency_key=key or f"charge-{uuid.uuid4()}",
        order_id=order,
        amount_cents=1000,
        currency="EUR",
        card_token=card,
    )


async def test_test_cards_and_idempotent_charges(payments_db: asyncpg.Pool) -> None:
    service = payments(payments_db)
    ctx: Any = None
    declined = await service.Charge(charge(DECLINE, order="o-1"), ctx)
    assert declined.status == pb.CHARGE_STATUS_DECLINED and declined.decline_reason
    request = charge(APPROVE, key="charge-key-1", order="o-1")
    approved, again = await asyncio.gather(
        service.Charge(request, ctx), service.Charge(request, ctx)
    )
    assert approved.status == pb.CHARGE_STATUS_APPROVED
    assert again == approved  # concurrent retries of one key: one charge
    with pytest.raises(AlreadyExists):  # a second approval for the order, other key
        await service.Charge(charge(APPROVE, order="o-1"), ctx)
    assert (
        await payments_db.fetchval(
            "SELECT count(*) FROM charges WHERE order_id = 'o-1' AND status = 'approved'"
        )
        == 1
    )
    with pytest.raises(Unavailable):
        await service.Charge(charge(TIMEOUT), ctx)


async def test_concurrent_approvals_of_one_order_under_other_keys(
    payments_db: asyncpg.Pool,
) -> None:
    """Each pay checks for an approved charge before it inserts its own, so
    concurrent ones all pass the check; the unique index decides, and the losers
    get ALREADY_EXISTS (booking answers 409), not the index's violation (a 500)."""
    service = payments(payments_db)
    outcomes = await asyncio.gather(
        *(service.Charge(charge(APPROVE, order="o-race"), None) for _ in range(5)),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    approved = [o for o in outcomes if isinstance(o, pb.ChargeResult)]
    refused = [o for o in outcomes if isinstance(o, AlreadyExists)]
    assert len(approved) == 1 and len(refused) == 4, outcomes
    assert approved[0].status == pb.CHARGE_STATUS_APPROVED
    # The losers' idempotency keys were rolled back with them: none answers a retry
    # from a half-written key.
    assert await payments_db.fetchval("SELECT count(*) FROM idempotency_keys") == 1


async def test_injected_failures(payments_db: asyncpg.Pool) -> None:
    service = payments(payments_db, payments_failure_rate=1.0)
    with pytest.raises(Unavailable):
        await service.Charge(charge(APPROVE), None)  # type: ignore[arg-type]
    assert await payments_db.fetchval("SELECT count(*) FROM charges") == 0  # nothing half-written


class _InProcess:
    """Booking's payment port, answered by the real payments service."""

    def __init__(self, service: PaymentsService) -> None:
        self._service = service

    async def charge(self, request: pb.ChargeRequest) -> pb.ChargeResult:
        return await self._service.Charge(request, None)  # type: ignore[arg-type]


async def test_pay_order_sells_the_seats_once(
    payments_db: asyncpg.Pool, postgres_server: str, redis_server: str
) -> None:
    name = f"b_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_server, name)
    url = database_url(postgres_server, name)
    await migrate(url, Path(BOOKING_MIGRATIONS))
    pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
    assert pool is not None
    booking = BookingService(
        pool,
        _Seats(),
        RoomAdmissions(redis_server),
        timedelta(minutes=5),
        _InProcess(payments(payments_db)),
    )
    held = await booking.HoldSeats(hold(["FLOOR-R01-005"]), who("gus"))
    order = await booking.CreateOrder(
        bpb.CreateOrderRequest(hold_id=held.hold_id, idempotency_key="order-gus-1"), who("gus")
    )
    with pytest.raises(PaymentDeclined):
        await booking.PayOrder(
            bpb.PayOrderRequest(
                order_id=order.order_id, card_token=DECLINE, idempotency_key="pay-gus-1"
            ),
            who("gus"),
        )
    pay = bpb.PayOrderRequest(
        order_id=order.order_id, card_token=APPROVE, idempotency_key="pay-gus-2"
    )
    paid, again = await asyncio.gather(
        booking.PayOrder(pay, who("gus")), booking.PayOrder(pay, who("gus"))
    )
    assert paid.status == again.status == bpb.ORDER_STATUS_PAID
    state = await pool.fetchval(
        "SELECT state FROM seats WHERE event_id = $1 AND seat_id = 'FLOOR-R01-005'", EVENT
    )
    assert state == "sold"
    assert await payments_db.fetchval("SELECT count(*) FROM charges WHERE status = 'approved'") == 1
    events = await pool.fetchval("SELECT count(*) FROM outbox")
    assert events == 3  # held, order created, paid (once)
    await pool.close()
