"""Catalog queries against Postgres (asyncpg). Each query has an index that
serves it; see migrations/0001_catalog.sql and tests/integration."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from groundwork_catalog.availability import ORIGIN, Moved
from groundwork_catalog.domain import (
    UPDATABLE,
    Cursor,
    ListEventsQuery,
    NewEvent,
    SeatStatus,
    check_section_prices,
)
from groundwork_shared.errors import NotFound
from groundwork_shared.positions import Position


@dataclass(frozen=True)
class VenueRow:
    venue_id: uuid.UUID
    name: str
    city: str
    capacity: int


@dataclass(frozen=True)
class EventRow:
    event_id: uuid.UUID
    name: str
    venue: VenueRow
    starts_at: datetime
    currency: str
    min_price_cents: int
    seats_available: int


@dataclass(frozen=True)
class LayoutSeat:
    index: int
    section: str
    row: str
    number: int
    price_cents: int


@dataclass(frozen=True)
class AvailabilityRow:
    layout_version: str
    currency: str
    seat_count: int
    states: bytes
    available: int
    held: int
    sold: int
    version: Position


@dataclass(frozen=True)
class ChangeRow:
    version: Position
    seat_indexes: list[int]
    status: SeatStatus


@dataclass(frozen=True)
class SeatRow:
    seat_id: str
    section: str
    row: str
    number: int
    price_cents: int
    status: SeatStatus


_EVENT_COLUMNS = """
    e.event_id, e.name, e.starts_at, e.currency, e.min_price_cents, e.seats_available,
    v.venue_id, v.name AS venue_name, v.city, v.capacity
"""

# Two shapes only (with and without a city), so each has one stable plan. The lower
# bound is a row comparison on the index's columns: a keyset seek, never an OFFSET.
LIST_EVENTS = f"""
SELECT {_EVENT_COLUMNS}
FROM events e JOIN venues v ON v.venue_id = e.venue_id
WHERE (e.starts_at, e.event_id) > ($1, $2) AND e.starts_at < $3
ORDER BY e.starts_at, e.event_id
LIMIT $4
"""

LIST_EVENTS_IN_CITY = f"""
SELECT {_EVENT_COLUMNS}
FROM events e JOIN venues v ON v.venue_id = e.venue_id
WHERE lower(e.city) = lower($5) AND (e.starts_at, e.event_id) > ($1, $2) AND e.starts_at < $3
ORDER BY e.starts_at, e.event_id
LIMIT $4
"""

GET_EVENT = f"""
SELECT {_EVENT_COLUMNS}
FROM events e JOIN venues v ON v.venue_id = e.venue_id
WHERE e.event_id = $1
"""

GET_SEATS = """
SELECT seat_id, section, row_label, number, price_cents, status
FROM event_seats WHERE event_id = $1 ORDER BY seat_id
"""

# Layout order is seat_id order, which the primary key reads without sorting.
GET_LAYOUT = """
SELECT seat_index, section, row_label, number, price_cents
FROM event_seats WHERE event_id = $1 ORDER BY seat_id
"""

GET_AVAILABILITY = """
SELECT layout_version, currency, seats_total, seat_states, seats_available, seats_held,
       seats_sold, seats_version_ms, seats_version_seq
FROM events WHERE event_id = $1
"""

GET_CHANGES = """
SELECT version_ms, version_seq, seat_indexes, status FROM seat_changes
WHERE event_id = $1 AND (version_ms, version_seq) > ($2, $3)
ORDER BY version_ms, version_seq
LIMIT $4
"""

_NIL = uuid.UUID(int=0)
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def _event(row: asyncpg.Record) -> EventRow:
    return EventRow(
        event_id=row["event_id"],
        name=row["name"],
        venue=VenueRow(row["venue_id"], row["venue_name"], row["city"], row["capacity"]),
        starts_at=row["starts_at"],
        currency=row["currency"],
        min_price_cents=row["min_price_cents"],
        seats_available=row["seats_available"],
    )


def list_events_args(query: ListEventsQuery) -> tuple[str, list[object]]:
    """The SQL and arguments for one page; fetches one extra row to know if more follow."""
    flt = query.event_filter
    lower: tuple[datetime, uuid.UUID] = (
        (query.after.starts_at, query.after.event_id)
        if query.after
        # Strictly after (starts_after - epsilon, nil uuid) == at or after starts_after.
        else (query.lower_bound, _NIL)
    )
    args: list[object] = [*lower, flt.starts_before or _END_OF_TIME, query.page_size + 1]
    if flt.city:
        return LIST_EVENTS_IN_CITY, [*args, flt.city]
    return LIST_EVENTS, args


async def list_events(
    conn: asyncpg.Connection, query: ListEventsQuery
) -> tuple[list[EventRow], Cursor | None]:
    sql, args = list_events_args(query)
    rows = [_event(r) for r in await conn.fetch(sql, *args)]
    if len(rows) <= query.page_size:
        return rows, None
    page = rows[: query.page_size]
    last = page[-1]
    return page, Cursor(last.starts_at, last.event_id)


async def get_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> EventRow | None:
    row = await conn.fetchrow(GET_EVENT, event_id)
    return _event(row) if row else None


async def get_layout(conn: asyncpg.Connection, event_id: uuid.UUID) -> list[LayoutSeat]:
    return [
        LayoutSeat(r["seat_index"], r["section"], r["row_label"], r["number"], r["price_cents"])
        for r in await conn.fetch(GET_LAYOUT, event_id)
    ]


async def get_availability(conn: asyncpg.Connection, event_id: uuid.UUID) -> AvailabilityRow | None:
    r = await conn.fetchrow(GET_AVAILABILITY, event_id)
    if r is None:
        return None
    return AvailabilityRow(
        r["layout_version"],
        r["currency"],
        r["seats_total"],
        r["seat_states"],
        r["seats_available"],
        r["seats_held"],
        r["seats_sold"],
        (r["seats_version_ms"], r["seats_version_seq"]),
    )


async def get_changes(
    conn: asyncpg.Connection, event_id: uuid.UUID, since: Position, limit: int
) -> list[ChangeRow] | None:
    """The changes after `since`, or None when some of them are no longer kept."""
    oldest = await conn.fetchrow(
        """SELECT version_ms, version_seq FROM seat_changes WHERE event_id = $1
           ORDER BY version_ms, version_seq LIMIT 1""",
        event_id,
    )
    # Kept from `oldest` on: a client at or after the change before it is served.
    if oldest is None or since < (oldest["version_ms"], oldest["version_seq"]):
        return None
    rows = await conn.fetch(GET_CHANGES, event_id, *since, limit + 1)
    if len(rows) > limit:
        return None
    return [
        ChangeRow(
            (r["version_ms"], r["version_seq"]),
            list(r["seat_indexes"]),
            SeatStatus(r["status"]),
        )
        for r in rows
    ]


async def get_seats(conn: asyncpg.Connection, event_id: uuid.UUID) -> list[SeatRow]:
    return [
        SeatRow(
            r["seat_id"],
            r["section"],
            r["row_label"],
            r["number"],
            r["price_cents"],
            SeatStatus(r["status"]),
        )
        for r in await conn.fetch(GET_SEATS, event_id)
    ]


async def create_event(
    conn: asyncpg.Connection, new: NewEvent, version: Position = ORIGIN
) -> uuid.UUID:
    """Insert the event and one priced seat per seat of its venue (in the caller's
    transaction), once the prices fit the venue's sections; its availability starts
    at `version`, a booking stream position no event of its seats can precede."""
    venue = await conn.fetchrow("SELECT city FROM venues WHERE venue_id = $1", new.venue_id)
    if venue is None:
        raise NotFound(f"venue {new.venue_id} not found")
    sections = {
        r["section"]
        for r in await conn.fetch(
            "SELECT DISTINCT section FROM venue_seats WHERE venue_id = $1", new.venue_id
        )
    }
    check_section_prices(sections, new.section_prices)
    event_id: uuid.UUID = await conn.fetchval(
        """INSERT INTO events (venue_id, city, name, starts_at, currency,
                               seats_version_ms, seats_version_seq)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING event_id""",
        new.venue_id,
        venue["city"],
        new.name,
        new.starts_at,
        new.currency,
        *version,
    )
    await conn.execute(
        """INSERT INTO event_seats
             (event_id, seat_id, section, row_label, number, price_cents, seat_index)
           SELECT $1, seat_id, section, row_label, number, ($3::jsonb ->> section)::bigint,
                  (row_number() OVER (ORDER BY seat_id) - 1)::integer
           FROM venue_seats WHERE venue_id = $2""",
        event_id,
        new.venue_id,
        json.dumps(new.section_prices),
    )
    await conn.execute(
        """UPDATE events SET seats_total = s.n, min_price_cents = s.low
           FROM (SELECT count(*) AS n, min(price_cents) AS low FROM event_seats
                 WHERE event_id = $1) s
           WHERE event_id = $1""",
        event_id,
    )
    # Counts, packed states and layout version, from the seats just inserted.
    await conn.execute("SELECT catalog_rebuild_availability($1)", event_id)
    return event_id


async def update_event(
    conn: asyncpg.Connection, event_id: uuid.UUID, changes: dict[str, object]
) -> bool:
    assert set(changes) <= set(UPDATABLE)  # column names are never user input
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    result: str = await conn.execute(
        f"UPDATE events SET {assignments} WHERE event_id = $1", event_id, *changes.values()
    )
    return result == "UPDATE 1"


# The self-join reads each row as it was before this UPDATE changed it.
_MOVE = """
UPDATE event_seats s SET status = $4
FROM event_seats before
WHERE s.event_id = $1 AND s.seat_id = ANY($2::text[]) AND s.status = ANY($3::text[])
  AND before.event_id = s.event_id AND before.seat_id = s.seat_id
RETURNING s.seat_index, before.status
"""


async def move_seats(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    seat_ids: list[str],
    sources: tuple[SeatStatus, ...],
    target: SeatStatus,
) -> list[Moved]:
    """Move the seats that are in one of `sources` to `target`; the others stay."""
    rows = await conn.fetch(_MOVE, event_id, seat_ids, [s.value for s in sources], target.value)
    return [Moved(r["seat_index"], SeatStatus(r["status"])) for r in rows]


async def lock_seat_states(conn: asyncpg.Connection, event_id: uuid.UUID) -> bytes:
    """The event's packed states, its row locked until the caller's transaction ends."""
    # The seats' foreign key guarantees the row.
    states: bytes = await conn.fetchval(
        "SELECT seat_states FROM events WHERE event_id = $1 FOR UPDATE", event_id
    )
    return states


async def record_availability(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    states: bytes,
    deltas: dict[SeatStatus, int],
    version: Position,
) -> None:
    await conn.execute(
        """UPDATE events SET seat_states = $2,
             seats_available = seats_available + $3, seats_held = seats_held + $4,
             seats_sold = seats_sold + $5, seats_version_ms = $6, seats_version_seq = $7
           WHERE event_id = $1""",
        event_id,
        states,
        deltas[SeatStatus.AVAILABLE],
        deltas[SeatStatus.HELD],
        deltas[SeatStatus.SOLD],
        *version,
    )


async def record_change(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    version: Position,
    seat_indexes: list[int],
    status: SeatStatus,
) -> None:
    """One change record; a replayed event's is already there and stays as it was."""
    await conn.execute(
        """INSERT INTO seat_changes (event_id, version_ms, version_seq, seat_indexes, status)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        event_id,
        *version,
        seat_indexes,
        status.value,
    )


async def forget_changes_before(conn: asyncpg.Connection, event_id: uuid.UUID, ms: int) -> None:
    await conn.execute(
        "DELETE FROM seat_changes WHERE event_id = $1 AND version_ms < $2", event_id, ms
    )
