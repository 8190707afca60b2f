"""Booking against real Postgres: no seat is ever held twice under concurrency,
holds expire, orders come from active holds only, every write is idempotent and
announced through the outbox in the same transaction."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from groundwork.booking.v1 import booking_pb2 as pb
from groundwork.booking.v1 import events_pb2
from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_booking import MIGRATIONS
from groundwork_booking.domain import (
    AdmissionRequired,
    HoldNotActive,
    SeatPrice,
    SeatsUnavailable,
)
from groundwork_booking.service import BookingService
from groundwork_booking.workers import sweep_once
from groundwork_shared.errors import InvalidArgument, NotFound
from groundwork_shared.migrations import migrate
from tests.callers import verified
from tests.integration.rooms import RoomAdmissions

EVENT = uuid.uuid4()
SEATS = [SeatPrice(f"FLOOR-R01-{n:03d}", 5000 + n, "EUR") for n in range(1, 41)]


class _Seats:
    """The catalog's answer for one event (the real client is exercised end to end)."""

    async def seats(self, event_id: uuid.UUID) -> list[SeatPrice] | None:
        return SEATS if event_id == EVENT else None


def who(user: str) -> Any:
    return verified(user)


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(fresh_database, Path(MIGRATIONS))
    created = await asyncpg.create_pool(fresh_database, min_size=2, max_size=20)
    assert created is not None
    yield created
    await created.close()


@pytest.fixture
def admissions(redis_server: str) -> RoomAdmissions:
    return RoomAdmissions(redis_server)


def service(
    pool: asyncpg.Pool, admissions: RoomAdmissions, ttl: timedelta = timedelta(minutes=5)
) -> BookingService:
    return BookingService(pool, _Seats(), admissions, ttl)


def hold(seats: list[str], key: str | None = None) -> pb.HoldSeatsRequest:
    return pb.HoldSeatsRequest(
        event_id=str(EVENT), seat_ids=seats, idempotency_key=key or f"hold-{uuid.uuid4()}"
    )


async def test_one_seat_one_winner_among_a_hundred_buyers(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    booking = service(pool, admissions)
    await booking.HoldSeats(hold(["FLOOR-R01-040"]), who("warm-up"))  # loads inventory
    seat = "FLOOR-R01-001"

    async def attempt(n: int) -> str:
        try:
            await booking.HoldSeats(hold([seat]), who(f"buyer-{n}"))
            return "won"
        except SeatsUnavailable:
            return "lost"

    results = await asyncio.gather(*(attempt(n) for n in range(100)))
    assert results.count("won") == 1
    holders = await pool.fetchval(
        "SELECT count(*) FROM holds WHERE $1 = ANY(seat_ids) AND status = 'active'", seat
    )
    assert holders == 1


async def test_overlapping_multi_seat_holds_never_share_a_seat(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    booking = service(pool, admissions)
    seats = [s.seat_id for s in SEATS[:12]]

    async def attempt(n: int) -> None:
        chosen = [seats[(n + k) % 12] for k in range(4)]
        with contextlib.suppress(SeatsUnavailable):
            await booking.HoldSeats(hold(chosen), who(f"group-{n}"))

    await asyncio.gather(*(attempt(n) for n in range(40)))
    rows = await pool.fetch("SELECT unnest(seat_ids) AS seat FROM holds WHERE status = 'active'")
    held = [r["seat"] for r in rows]
    assert len(held) == len(set(held))  # no seat in two holds
    states = await pool.fetch("SELECT s.seat_id, s.hold_id FROM seats s WHERE s.state = 'held'")
    assert sorted(r["seat_id"] for r in states) == sorted(held)  # all or nothing per hold


async def _past(pool: asyncpg.Pool, table: str, column: str, key: str, value: str) -> None:
    """Time travel in the database: the row's deadline is now behind it (no waiting)."""
    moved = await pool.execute(
        f"UPDATE {table} SET {column} = now() - interval '1 second' WHERE {key} = $1",
        uuid.UUID(value),
    )
    assert moved == "UPDATE 1"


async def test_holds_are_idempotent_released_and_expire(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    booking = service(pool, admissions)
    request = hold(["FLOOR-R01-010", "FLOOR-R01-011"], key="same-key-123")
    first = await booking.HoldSeats(request, who("ann"))
    assert await booking.HoldSeats(request, who("ann")) == first  # a retry, not a new hold
    with pytest.raises(SeatsUnavailable):
        await booking.HoldSeats(hold(["FLOOR-R01-011"]), who("bob"))
    released = await booking.ReleaseHold(
        pb.ReleaseHoldRequest(hold_id=first.hold_id, idempotency_key="release-1"), who("ann")
    )
    assert released.status == pb.HOLD_STATUS_RELEASED
    bobs = await booking.HoldSeats(hold(["FLOOR-R01-011"]), who("bob"))
    await _past(pool, "holds", "expires_at", "hold_id", bobs.hold_id)
    assert await sweep_once(pool) == 1  # bob's hold expired
    await booking.HoldSeats(hold(["FLOOR-R01-011"]), who("cy"))  # free again
    with pytest.raises(HoldNotActive):
        await booking.CreateOrder(
            pb.CreateOrderRequest(hold_id=bobs.hold_id, idempotency_key="order-late"), who("bob")
        )


async def test_orders_from_active_holds_of_their_owner(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    booking = service(pool, admissions)
    held = await booking.HoldSeats(hold(["FLOOR-R01-020", "FLOOR-R01-021"]), who("dee"))
    with pytest.raises(HoldNotActive):  # not dee's? the same answer as any inactive hold
        await booking.CreateOrder(
            pb.CreateOrderRequest(hold_id=held.hold_id, idempotency_key="steal-0001"), who("eve")
        )
    request = pb.CreateOrderRequest(hold_id=held.hold_id, idempotency_key="order-dee-1")
    order = await booking.CreateOrder(request, who("dee"))
    assert order.amount_cents == 5020 + 5021 and order.currency == "EUR"
    assert order.status == pb.ORDER_STATUS_PENDING_PAYMENT
    assert await booking.CreateOrder(request, who("dee")) == order
    with pytest.raises(HoldNotActive):  # converted: no second order from it
        await booking.CreateOrder(
            pb.CreateOrderRequest(hold_id=held.hold_id, idempotency_key="order-dee-2"), who("dee")
        )
    assert await booking.GetOrder(pb.GetOrderRequest(order_id=order.order_id), who("dee")) == order
    with pytest.raises(NotFound):
        await booking.GetOrder(pb.GetOrderRequest(order_id=order.order_id), who("eve"))
    mine = await booking.ListMyOrders(pb.ListMyOrdersRequest(), who("dee"))
    assert [o.order_id for o in mine.orders] == [order.order_id]


async def test_unpaid_orders_are_cancelled_and_free_their_seats(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    booking = service(pool, admissions)
    held = await booking.HoldSeats(hold(["FLOOR-R01-033"]), who("hal"))
    order = await booking.CreateOrder(
        pb.CreateOrderRequest(hold_id=held.hold_id, idempotency_key="order-hal-1"), who("hal")
    )
    await _past(pool, "orders", "pay_by", "order_id", order.order_id)
    with pytest.raises(HoldNotActive, match="deadline"):
        await booking.PayOrder(
            pb.PayOrderRequest(
                order_id=order.order_id, card_token="tok_x", idempotency_key="pay-hal-1"
            ),
            who("hal"),
        )
    assert await sweep_once(pool) == 1
    cancelled = await booking.GetOrder(pb.GetOrderRequest(order_id=order.order_id), who("hal"))
    assert cancelled.status == pb.ORDER_STATUS_CANCELLED
    rows = await pool.fetch("SELECT envelope FROM outbox ORDER BY position")
    announced = [Envelope.FromString(r["envelope"]) for r in rows][-2:]
    assert [e.type for e in announced] == ["booking.order_cancelled", "booking.seats_released"]
    payload = events_pb2.OrderCancelled()
    assert announced[0].payload.Unpack(payload)
    assert (payload.order_id, payload.user_id) == (order.order_id, "hal")
    await booking.HoldSeats(hold(["FLOOR-R01-033"]), who("ivy"))  # the seat is free again


async def test_bad_input_and_unknown_events(pool: asyncpg.Pool, admissions: RoomAdmissions) -> None:
    booking = service(pool, admissions)
    for seats in ([], ["A"] * 2, [f"S{n}" for n in range(11)]):
        with pytest.raises(InvalidArgument):
            await booking.HoldSeats(hold(seats), who("x"))
    with pytest.raises(NotFound):
        await booking.HoldSeats(
            pb.HoldSeatsRequest(
                event_id=str(uuid.uuid4()), seat_ids=["A-R01-001"], idempotency_key="k" * 10
            ),
            who("x"),
        )
    with pytest.raises(SeatsUnavailable):
        await booking.HoldSeats(hold(["NO-SUCH-001"]), who("x"))


async def test_every_change_is_announced_in_order(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    booking = service(pool, admissions)
    held = await booking.HoldSeats(hold(["FLOOR-R01-030"]), who("fay"))
    await booking.ReleaseHold(
        pb.ReleaseHoldRequest(hold_id=held.hold_id, idempotency_key="rel-fay-1"), who("fay")
    )
    with pytest.raises(SeatsUnavailable):
        await booking.HoldSeats(hold(["FLOOR-R01-030", "NO-SUCH-001"]), who("fay"))
    rows = await pool.fetch("SELECT stream, envelope FROM outbox ORDER BY position")
    types = [Envelope.FromString(r["envelope"]).type for r in rows]
    assert types == ["booking.seats_held", "booking.seats_released"]  # failed hold: nothing
    assert {r["stream"] for r in rows} == {"booking"}


async def test_a_hold_on_an_event_with_a_room_needs_its_admission(
    pool: asyncpg.Pool, admissions: RoomAdmissions
) -> None:
    """The rule on the message booking parsed, against the room in Redis: with a
    room open on the event, a caller with no admission holds nothing."""
    booking = service(pool, admissions)
    queued = uuid.uuid4()  # its own event: the other tests' has no room
    await admissions.open_room(queued)
    request = pb.HoldSeatsRequest(
        event_id=str(queued), seat_ids=["FLOOR-R01-040"], idempotency_key="skip-1"
    )
    with pytest.raises(AdmissionRequired):
        await booking.HoldSeats(request, who("queue-skipper"))
