"""gRPC entrypoint of the catalog: protobuf in, domain calls, protobuf out.
Domain errors are translated to gRPC statuses by the shared interceptor."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_catalog import domain
from groundwork_catalog.repository import CatalogRepository, EventRow, create_event, update_event
from groundwork_shared import idempotency
from groundwork_shared.cache import Cache
from groundwork_shared.caller import require_role
from groundwork_shared.errors import NotFound
from groundwork_shared.messages import request_datetime, timestamp

_SEAT_STATUS = {
    domain.SeatStatus.AVAILABLE: pb.SEAT_STATUS_AVAILABLE,
    domain.SeatStatus.HELD: pb.SEAT_STATUS_HELD,
    domain.SeatStatus.SOLD: pb.SEAT_STATUS_SOLD,
}

Context = grpc.aio.ServicerContext[Any, Any]
M = TypeVar("M", bound=Message)


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
        starts_at=timestamp(row.starts_at),
        min_price_cents=row.min_price_cents,
        currency=row.currency,
        seats_available=row.seats_available,
    )


# Events change rarely and are invalidated on every write; seat maps change with
# every hold, so their TTL bounds staleness until seat events invalidate them.
EVENT_TTL = 300
SEAT_MAP_TTL = 5


class CatalogService(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, repository: CatalogRepository, cache: Cache | None = None) -> None:
        self._repository = repository
        self._cache = cache

    async def _cached(
        self, key: str, message_type: type[M], ttl: int, load: Callable[[], Awaitable[M | None]]
    ) -> M | None:
        if self._cache is None:
            return await load()
        return await self._cache.get_or_load(key, message_type, ttl, load)

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Context
    ) -> pb.ListEventsResponse:
        query = domain.list_events_query(
            city=request.city,
            starts_after=request_datetime(request, "starts_after"),
            starts_before=request_datetime(request, "starts_before"),
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
        event_id = domain.parse_event_id(request.event_id)

        async def load() -> pb.Event | None:
            row = await self._repository.get_event(event_id)
            return event_message(row) if row else None

        event = await self._cached(f"event:{event_id}", pb.Event, EVENT_TTL, load)
        if event is None:
            raise NotFound(f"event {request.event_id} not found")
        return event

    async def GetSeatMap(self, request: pb.GetSeatMapRequest, context: Context) -> pb.SeatMap:
        event_id = domain.parse_event_id(request.event_id)
        seat_map = await self._cached(
            f"seatmap:{event_id}", pb.SeatMap, SEAT_MAP_TTL, lambda: self._load_seat_map(event_id)
        )
        if seat_map is None:
            raise NotFound(f"event {request.event_id} not found")
        return seat_map

    async def _load_seat_map(self, event_id: uuid.UUID) -> pb.SeatMap | None:
        seats = await self._repository.get_seats(event_id)
        if not seats and await self._repository.get_event(event_id) is None:
            return None
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
            starts_at=request_datetime(request, "starts_at"),
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
            starts_at=request_datetime(request, "starts_at"),
            now=datetime.now(UTC),
        )
        async with self._repository.connection() as conn, conn.transaction():
            if not await update_event(conn, event_id, changes):
                raise NotFound(f"event {request.event_id} not found")
            row = await self._repository.get_event(event_id, conn)
        assert row is not None
        if self._cache:
            await self._cache.invalidate(f"event:{event_id}")
        return event_message(row)
