"""gRPC entrypoint of the catalog: protobuf in, domain calls, protobuf out.
Domain errors are translated to gRPC statuses by the shared interceptor."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message
from redis.exceptions import RedisError

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_catalog import availability, domain, repository
from groundwork_catalog.availability import ORIGIN, parse_version
from groundwork_catalog.repository import AvailabilityRow, EventRow, LayoutSeat
from groundwork_catalog.settings import CatalogSettings
from groundwork_shared import idempotency, positions
from groundwork_shared.cache import Cache
from groundwork_shared.caller import Context, require_role
from groundwork_shared.errors import NotFound
from groundwork_shared.interceptors import add_caching_headers
from groundwork_shared.messages import Serialized, request_datetime, timestamp
from groundwork_shared.positions import Position

_SEAT_STATUS: dict[domain.SeatStatus, pb.SeatStatus.ValueType] = {
    domain.SeatStatus.AVAILABLE: pb.SEAT_STATUS_AVAILABLE,
    domain.SeatStatus.HELD: pb.SEAT_STATUS_HELD,
    domain.SeatStatus.SOLD: pb.SEAT_STATUS_SOLD,
}

M = TypeVar("M", bound=Message)
log = logging.getLogger(__name__)


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


# Events change rarely and are invalidated on every write. A layout changes only
# with an admin edit (its version is a digest); a seat map is cached per version.
EVENT_TTL = 300
LAYOUT_TTL = 300
SEAT_MAP_TTL = 30
# More changes than this since a client's version: it gets the full states.
MAX_CHANGES = 500
IMMUTABLE = "public, max-age=31536000, immutable"


def layout_message(
    event_id: uuid.UUID, version: str, currency: str, seats: list[LayoutSeat]
) -> pb.SeatLayout:
    """Seats in layout order grouped into sections and rows (contiguous in that order)."""
    layout = pb.SeatLayout(
        event_id=str(event_id), layout_version=version, currency=currency, seat_count=len(seats)
    )
    section: pb.LayoutSection | None = None
    row: pb.LayoutRow | None = None
    for seat in seats:
        if section is None or section.name != seat.section:
            section = layout.sections.add(name=seat.section, price_cents=seat.price_cents)
            row = None
        if row is None or row.label != seat.row:
            row = section.rows.add(label=seat.row, first_index=seat.index)
        row.numbers.append(seat.number)
    return layout


def availability_message(event_id: uuid.UUID, row: AvailabilityRow) -> pb.SeatAvailability:
    return pb.SeatAvailability(
        event_id=str(event_id),
        version=positions.text(row.version),
        layout_version=row.layout_version,
        seat_count=row.seat_count,
        states=row.states,
        available=row.available,
        held=row.held,
        sold=row.sold,
    )


def seat_map_message(layout: pb.SeatLayout, avail: pb.SeatAvailability) -> pb.SeatMap:
    states = availability.unpack(avail.states, avail.seat_count)
    seat_map = pb.SeatMap(
        event_id=layout.event_id, available=avail.available, held=avail.held, sold=avail.sold
    )
    for section in layout.sections:
        for row in section.rows:
            for offset, number in enumerate(row.numbers):
                seat_map.seats.add(
                    seat_id=domain.seat_id(section.name, row.label, number),
                    section=section.name,
                    row=row.label,
                    number=number,
                    price_cents=section.price_cents,
                    status=_SEAT_STATUS[states[row.first_index + offset]],
                )
    return seat_map


def _caching(context: Context, etag: str, cache_control: str) -> None:
    """HTTP caching headers; the edge's transcoder turns them into response headers."""
    add_caching_headers(context, cache_control, f'"{etag}"')


class CatalogService(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: Cache | None = None,
        settings: CatalogSettings | None = None,
        booking_head: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._settings = settings or CatalogSettings()
        self._booking_head = booking_head

    async def _creation_version(self) -> Position:
        """A new event's availability version: the booking stream's head. No event of
        its seats can come before it exists, so a live client that starts there misses
        nothing, and realtime replays from the head instead of scanning the whole
        stream from ORIGIN before it says `ready`."""
        if self._booking_head is None:
            return ORIGIN
        try:
            return positions.parse(await self._booking_head())
        except (RedisError, OSError) as error:
            # ORIGIN is still correct, only slower for the first live clients.
            log.warning("booking stream head unknown", extra={"error": repr(error)})
            return ORIGIN

    async def _cached(
        self, key: str, message_type: type[M], ttl: int, load: Callable[[], Awaitable[M | None]]
    ) -> M | None:
        if self._cache is None:
            return await load()
        return await self._cache.get_or_load(key, message_type, ttl, load)

    async def _whole(
        self, key: str, ttl: int, load: Callable[[], Awaitable[M | None]]
    ) -> Serialized | M | None:
        """A cached answer returned whole: a hit is sent in its wire form, unparsed."""
        if self._cache is None:
            return await load()
        return await self._cache.serialized_or_load(key, ttl, load)

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
        async with self._pool.acquire() as conn:
            rows, cursor = await repository.list_events(conn, query)
        return pb.ListEventsResponse(
            events=[event_message(r) for r in rows],
            next_page_token=cursor.encode(query.event_filter) if cursor else "",
        )

    async def GetEvent(  # type: ignore[override]  # or its cached wire form
        self, request: pb.GetEventRequest, context: Context
    ) -> pb.Event | Serialized:
        event_id = domain.parse_event_id(request.event_id)

        async def load() -> pb.Event | None:
            async with self._pool.acquire() as conn:
                row = await repository.get_event(conn, event_id)
            return event_message(row) if row else None

        event = await self._whole(f"event:{event_id}", EVENT_TTL, load)
        if event is None:
            raise NotFound(f"event {request.event_id} not found")
        # The event page is what a crowd reloads: micro-cached at the edge like the
        # availability it shows (seats_available), for the same interval.
        add_caching_headers(context, f"public, max-age={self._settings.availability_cache_seconds}")
        return event

    async def _layout(self, event_id: uuid.UUID) -> pb.SeatLayout:
        async def load() -> pb.SeatLayout | None:
            async with self._pool.acquire() as conn:
                row = await repository.get_availability(conn, event_id)
                if row is None:
                    return None
                seats = await repository.get_layout(conn, event_id)
            return layout_message(event_id, row.layout_version, row.currency, seats)

        layout = await self._cached(f"layout:{event_id}", pb.SeatLayout, LAYOUT_TTL, load)
        if layout is None:
            raise NotFound(f"event {event_id} not found")
        return layout

    async def _availability(self, event_id: uuid.UUID) -> pb.SeatAvailability:
        # One primary-key read of one row: cheaper than a cache round trip to keep fresh.
        async with self._pool.acquire() as conn:
            row = await repository.get_availability(conn, event_id)
        if row is None:
            raise NotFound(f"event {event_id} not found")
        return availability_message(event_id, row)

    async def GetSeatLayout(
        self, request: pb.GetSeatLayoutRequest, context: Context
    ) -> pb.SeatLayout:
        event_id = domain.parse_event_id(request.event_id)
        layout = await self._layout(event_id)
        if request.layout_version and request.layout_version != layout.layout_version:
            raise NotFound(
                f"layout {request.layout_version} is not the event's current layout "
                f"({layout.layout_version})"
            )
        max_age = self._settings.layout_cache_seconds
        cache_control = IMMUTABLE if request.layout_version else f"public, max-age={max_age}"
        _caching(context, layout.layout_version, cache_control)
        return layout

    async def GetSeatAvailability(
        self, request: pb.GetSeatAvailabilityRequest, context: Context
    ) -> pb.SeatAvailability:
        event_id = domain.parse_event_id(request.event_id)
        since = parse_version(request.since_version) if request.since_version else None
        current = await self._availability(event_id)
        if since is not None and since != ORIGIN:
            async with self._pool.acquire() as conn:
                changes = await repository.get_changes(conn, event_id, since, MAX_CHANGES)
            if changes is not None:
                current.ClearField("states")
                current.incremental = True
                for change in changes:
                    current.changes.add(
                        version=positions.text(change.version),
                        seat_indexes=change.seat_indexes,
                        status=_SEAT_STATUS[change.status],
                    )
        etag = (
            f"{current.version}+{positions.text(since)}"
            if since and current.incremental
            else current.version
        )
        _caching(context, etag, f"public, max-age={self._settings.availability_cache_seconds}")
        return current

    async def GetSeatMap(  # type: ignore[override]  # or its cached wire form
        self, request: pb.GetSeatMapRequest, context: Context
    ) -> pb.SeatMap | Serialized:
        event_id = domain.parse_event_id(request.event_id)
        current = await self._availability(event_id)

        async def build() -> pb.SeatMap:
            return seat_map_message(await self._layout(event_id), current)

        # Built once per version (per instance, then shared through Redis), not per
        # read; a hit (about 160 KB for 5,000 seats) is sent as it was stored.
        seat_map = await self._whole(f"seatmap:{event_id}:{current.version}", SEAT_MAP_TTL, build)
        assert seat_map is not None
        etag = f"{current.layout_version}.{current.version}"
        _caching(context, etag, f"public, max-age={self._settings.availability_cache_seconds}")
        return seat_map

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
        version = await self._creation_version()

        async def write(conn: asyncpg.Connection) -> pb.Event:
            event_id = await repository.create_event(conn, new, version)
            row = await repository.get_event(conn, event_id)
            assert row is not None
            return event_message(row)

        async with self._pool.acquire() as conn:
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
        async with self._pool.acquire() as conn, conn.transaction():
            if not await repository.update_event(conn, event_id, changes):
                raise NotFound(f"event {request.event_id} not found")
            row = await repository.get_event(conn, event_id)
        assert row is not None
        if self._cache:
            await self._cache.invalidate(f"event:{event_id}")
        return event_message(row)
