"""gRPC entrypoint of the catalog: protobuf in, domain calls, protobuf out.
Domain errors are translated to gRPC statuses by the shared interceptor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_catalog import domain
from groundwork_catalog.repository import CatalogRepository, EventRow, create_event, update_event
from groundwork_shared import idempotency
from groundwork_shared.caller import require_role
from groundwork_shared.errors import InvalidArgument, NotFound

_SEAT_STATUS = {
    domain.SeatStatus.AVAILABLE: pb.SEAT_STATUS_AVAILABLE,
    domain.SeatStatus.HELD: pb.SEAT_STATUS_HELD,
    domain.SeatStatus.SOLD: pb.SEAT_STATUS_SOLD,
}

Context = grpc.aio.ServicerContext[Any, Any]


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _datetime(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise InvalidArgument.one(field, "timestamp out of range") from error


def event_message(row: EventRow) -> pb.Event:
    return pb.Event(
        event_id=str(row.event_id),
        name=row.name,
        venue=pb.Venue(
            venue_id=str(row.venue.venue_id),
            name=row.venue.name,
            city=row.venue.city,
            capacity=row.venue.capacity,
        ),
        starts_at=_timestamp(row.starts_at),
        min_price_cents=row.min_price_cents,
        currency=row.currency,
        seats_available=row.seats_available,
    )


class CatalogService(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, repository: CatalogRepository) -> None:
        self._repository = repository

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Context
    ) -> pb.ListEventsResponse:
        query = domain.list_events_query(
            city=request.city,
            starts_after=_datetime(request, "starts_after"),
            starts_before=_datetime(request, "starts_before"),
            page_size=request.page_size,
            page_token=request.page_token,
            now=datetime.now(UTC),
        )
        rows, cursor = await self._repository.list_events(query)
        return pb.ListEventsResponse(
            events=[event_message(r) for r in rows],
            next_page_token=cursor.encode(query.event_filter) if cursor else "",
        )

    async def GetEvent(self, request: pb.GetEventRequest, context: Context) -> pb.Event:
        row = await self._repository.get_event(domain.parse_event_id(request.event_id))
        if row is None:
            raise NotFound(f"event {request.event_id} not found")
        return event_message(row)

    async def GetSeatMap(self, request: pb.GetSeatMapRequest, context: Context) -> pb.SeatMap:
        event_id = domain.parse_event_id(request.event_id)
        seats = await self._repository.get_seats(event_id)
        if not seats and await self._repository.get_event(event_id) is None:
            raise NotFound(f"event {request.event_id} not found")
        counts = {status: 0 for status in domain.SeatStatus}
        for seat in seats:
            counts[seat.status] += 1
        return pb.SeatMap(
            event_id=str(event_id),
            seats=[
                pb.Seat(
                    seat_id=s.seat_id,
                    section=s.section,
                    row=s.row,
                    number=s.number,
                    price_cents=s.price_cents,
                    status=_SEAT_STATUS[s.status],
                )
                for s in seats
            ],
            available=counts[domain.SeatStatus.AVAILABLE],
            held=counts[domain.SeatStatus.HELD],
            sold=counts[domain.SeatStatus.SOLD],
        )

    async def CreateEvent(self, request: pb.CreateEventRequest, context: Context) -> pb.Event:
        admin = require_role(context, "admin")
        new = domain.new_event(
            venue_id=request.venue_id,
            name=request.name,
            starts_at=_datetime(request, "starts_at"),
            currency=request.currency,
            section_prices=dict(request.section_prices),
            now=datetime.now(UTC),
        )

        async def write(conn: Any) -> pb.Event:
            event_id = await create_event(conn, new)
            row = await self._repository.get_event(event_id, conn)
            assert row is not None
            return event_message(row)

        async with self._repository.connection() as conn:
            return await idempotency.once(
                conn,
                f"{admin.user_id}:CreateEvent",
                request.idempotency_key,
                request,
                pb.Event,
                write,
            )

    async def UpdateEvent(self, request: pb.UpdateEventRequest, context: Context) -> pb.Event:
        require_role(context, "admin")
        event_id = domain.parse_event_id(request.event_id)
        changes = domain.event_changes(
            paths=list(request.update_mask.paths),
            name=request.name,
            starts_at=_datetime(request, "starts_at"),
            now=datetime.now(UTC),
        )
        async with self._repository.connection() as conn, conn.transaction():
            if not await update_event(conn, event_id, changes):
                raise NotFound(f"event {request.event_id} not found")
            row = await self._repository.get_event(event_id, conn)
        assert row is not None
        return event_message(row)
