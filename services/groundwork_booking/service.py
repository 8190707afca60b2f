"""gRPC entrypoint of booking: protobuf to the domain and back, and each call's
transaction (the sweeper is in workers)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from groundwork.booking.v1 import booking_pb2 as pb
from groundwork.booking.v1 import booking_pb2_grpc
from groundwork.booking.v1 import events_pb2 as events
from groundwork.payments.v1 import payments_pb2
from groundwork_booking import STREAM, announcements, domain, repository
from groundwork_booking.domain import HoldStatus, OrderStatus, SeatPrice
from groundwork_booking.repository import HoldRow, OrderRow
from groundwork_shared import idempotency
from groundwork_shared.caller import Context, admission_claims, caller
from groundwork_shared.errors import InvalidArgument, NotFound, Unavailable
from groundwork_shared.events import envelope_for
from groundwork_shared.messages import parse_uuid, timestamp
from groundwork_shared.outbox import enqueue

log = logging.getLogger(__name__)

_HOLD_STATUS = {
    HoldStatus.ACTIVE: pb.HOLD_STATUS_ACTIVE,
    HoldStatus.RELEASED: pb.HOLD_STATUS_RELEASED,
    HoldStatus.EXPIRED: pb.HOLD_STATUS_EXPIRED,
    HoldStatus.CONVERTED: pb.HOLD_STATUS_CONVERTED,
}
_ORDER_STATUS = {
    OrderStatus.PENDING_PAYMENT: pb.ORDER_STATUS_PENDING_PAYMENT,
    OrderStatus.PAID: pb.ORDER_STATUS_PAID,
    OrderStatus.CANCELLED: pb.ORDER_STATUS_CANCELLED,
}


class SeatSource(Protocol):
    async def seats(self, event_id: uuid.UUID) -> list[SeatPrice] | None: ...


class Admissions(Protocol):
    async def session(self, event_id: uuid.UUID, user_id: str) -> domain.RoomSession: ...


class PaymentProvider(Protocol):
    async def charge(self, request: payments_pb2.ChargeRequest) -> payments_pb2.ChargeResult: ...


def hold_message(row: HoldRow) -> pb.Hold:
    return pb.Hold(
        hold_id=str(row.hold_id),
        event_id=str(row.event_id),
        seat_ids=row.seat_ids,
        expires_at=timestamp(row.expires_at),
        status=_HOLD_STATUS[row.status],
    )


def order_message(row: OrderRow) -> pb.Order:
    return pb.Order(
        order_id=str(row.order_id),
        hold_id=str(row.hold_id),
        event_id=str(row.event_id),
        seat_ids=row.seat_ids,
        amount_cents=row.amount_cents,
        currency=row.currency,
        status=_ORDER_STATUS[row.status],
        created_at=timestamp(row.created_at),
    )


async def hold_transaction(
    conn: asyncpg.Connection,
    user_id: str,
    hold: domain.HoldRequest,
    request: pb.HoldSeatsRequest,
    ttl: timedelta,
) -> pb.Hold:
    """A hold's whole database work, once per idempotency key: the conditional
    UPDATE of its seats, the hold row, its event in the outbox. (The sale
    benchmark runs exactly this in a loop, as the database's own ceiling.)"""

    async def write(conn: asyncpg.Connection) -> pb.Hold:
        row = await repository.hold_seats(conn, user_id, hold, ttl)
        held = events.SeatsHeld(
            event_id=str(row.event_id), hold_id=str(row.hold_id), seat_ids=row.seat_ids
        )
        await enqueue(conn, STREAM, envelope_for(str(row.event_id), held))
        return hold_message(row)

    return await idempotency.once(
        conn, f"{user_id}:HoldSeats", request.idempotency_key, request, pb.Hold, write
    )


class BookingService(booking_pb2_grpc.BookingServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        seats: SeatSource,
        admissions: Admissions,
        hold_ttl: timedelta,
        payments: PaymentProvider | None = None,
        pay_within: timedelta = timedelta(minutes=15),
    ) -> None:
        self._admissions = admissions
        self._pay_within = pay_within
        self._stocked: set[uuid.UUID] = set()
        self._pool = pool
        self._seats = seats
        self._hold_ttl = hold_ttl
        self._payments = payments

    async def _ensure_inventory(self, event_id: uuid.UUID) -> None:
        """Copy the event's seats from catalog on first sight. Remembered per process:
        a hold in a flash sale should not pay an extra query for a settled question."""
        if event_id in self._stocked:
            return
        async with self._pool.acquire() as conn:
            stocked = await repository.has_inventory(conn, event_id)
        if not stocked:
            seats = await self._seats.seats(event_id)
            if seats is None:
                raise NotFound(f"event {event_id} not found")
            async with self._pool.acquire() as conn:
                await repository.add_inventory(conn, event_id, seats)
        self._stocked.add(event_id)

    async def HoldSeats(self, request: pb.HoldSeatsRequest, context: Context) -> pb.Hold:
        who = caller(context)
        hold = domain.hold_request(request.event_id, list(request.seat_ids))
        await self._check_admission(hold.event_id, who.user_id, context)
        await self._ensure_inventory(hold.event_id)
        async with self._pool.acquire() as conn:
            return await hold_transaction(conn, who.user_id, hold, request, self._hold_ttl)

    async def _check_admission(self, event_id: uuid.UUID, user_id: str, context: Context) -> None:
        """The waiting room's rule, on the request as parsed here: the edge verified
        the admission token, the room says whether the session is live."""
        claims = admission_claims(context)
        token = domain.AdmissionToken(*claims) if claims else None
        room = await self._admissions.session(event_id, user_id)
        domain.check_admission(event_id, user_id, token, room)

    async def ReleaseHold(self, request: pb.ReleaseHoldRequest, context: Context) -> pb.Hold:
        who = caller(context)
        hold_id = parse_uuid("hold_id", request.hold_id)

        async def write(conn: asyncpg.Connection) -> pb.Hold:
            row = await repository.release(conn, hold_id, who.user_id, HoldStatus.RELEASED)
            if row is None:
                existing = await repository.get_hold(conn, hold_id)
                if existing is None or existing.user_id != who.user_id:
                    raise NotFound(f"hold {hold_id} not found")
                raise domain.HoldNotActive(f"hold is {existing.status}")
            await announcements.seats_released(conn, row, HoldStatus.RELEASED)
            return hold_message(row)

        async with self._pool.acquire() as conn:
            return await idempotency.once(
                conn, f"{who.user_id}:ReleaseHold", request.idempotency_key, request, pb.Hold, write
            )

    async def CreateOrder(self, request: pb.CreateOrderRequest, context: Context) -> pb.Order:
        who = caller(context)
        hold_id = parse_uuid("hold_id", request.hold_id)

        async def write(conn: asyncpg.Connection) -> pb.Order:
            row = await repository.create_order(conn, hold_id, who.user_id, self._pay_within)
            created = events.OrderCreated(
                order_id=str(row.order_id),
                event_id=str(row.event_id),
                user_id=row.user_id,
                seat_ids=row.seat_ids,
                amount_cents=row.amount_cents,
            )
            await enqueue(conn, STREAM, envelope_for(str(row.order_id), created))
            return order_message(row)

        async with self._pool.acquire() as conn:
            return await idempotency.once(
                conn,
                f"{who.user_id}:CreateOrder",
                request.idempotency_key,
                request,
                pb.Order,
                write,
            )

    async def PayOrder(self, request: pb.PayOrderRequest, context: Context) -> pb.Order:
        """Idempotent without a key table of its own: payments answers a repeated key
        with its first outcome, and a paid order is returned as it is."""
        who = caller(context)
        order_id = parse_uuid("order_id", request.order_id)
        idempotency.validate_key(request.idempotency_key)
        if not request.card_token:
            raise InvalidArgument.one("card_token", "required")
        async with self._pool.acquire() as conn:
            order = await repository.get_order(conn, order_id)
        if order is None or order.user_id != who.user_id:
            raise NotFound(f"order {order_id} not found")
        if not domain.needs_payment(order.status, order.pay_by, datetime.now(UTC)):
            return order_message(order)
        if self._payments is None:
            raise Unavailable("no payment provider configured")
        try:
            result = await self._payments.charge(
                payments_pb2.ChargeRequest(
                    idempotency_key=f"{order_id}:{request.idempotency_key}",
                    order_id=str(order_id),
                    amount_cents=order.amount_cents,
                    currency=order.currency,
                    card_token=request.card_token,
                )
            )
        except domain.PaymentInProgress:
            # The concurrent pay that was charged may have recorded it by now.
            async with self._pool.acquire() as conn:
                current = await repository.get_order(conn, order_id)
            if current is not None and current.status is OrderStatus.PAID:
                return order_message(current)
            raise
        if result.status != payments_pb2.CHARGE_STATUS_APPROVED:
            raise domain.PaymentDeclined(f"payment declined: {result.decline_reason}")
        async with self._pool.acquire() as conn, conn.transaction():
            paid = await repository.mark_paid(conn, order_id)
            if paid is None:  # paid meanwhile by a concurrent retry
                current = await repository.get_order(conn, order_id)
                assert current is not None
                return order_message(current)
            event = events.OrderPaid(
                order_id=str(order_id),
                event_id=str(paid.event_id),
                user_id=paid.user_id,
                seat_ids=paid.seat_ids,
                amount_cents=paid.amount_cents,
                charge_id=result.charge_id,
            )
            await enqueue(conn, STREAM, envelope_for(str(order_id), event))
        return order_message(paid)

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.Order:
        who = caller(context)
        order_id = parse_uuid("order_id", request.order_id)
        async with self._pool.acquire() as conn:
            row = await repository.get_order(conn, order_id)
        # Someone else's order does not exist, as far as this caller can tell.
        if row is None or row.user_id != who.user_id:
            raise NotFound(f"order {order_id} not found")
        return order_message(row)

    async def ListMyOrders(
        self, request: pb.ListMyOrdersRequest, context: Context
    ) -> pb.ListMyOrdersResponse:
        who = caller(context)
        if not 0 <= request.page_size <= 50:
            raise InvalidArgument.one("page_size", "0 to 50")
        async with self._pool.acquire() as conn:
            rows = await repository.list_orders(conn, who.user_id, request.page_size or 20)
        return pb.ListMyOrdersResponse(orders=[order_message(r) for r in rows])
