"""The catalog's queries against real Postgres: results, pagination, and the
indexes behind them (checked with EXPLAIN on a table big enough to matter)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from groundwork_catalog import repository
from groundwork_catalog.domain import SeatStatus, list_events_query
from groundwork_catalog.repository import GET_SEATS, list_events_args
from groundwork_catalog.seed import EVENT_COUNT, seed

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def q(**kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        city="", starts_after=None, starts_before=None, page_size=0, page_token="", now=NOW
    )
    args.update(kw)
    return list_events_query(**args)  # type: ignore[arg-type]


@pytest.fixture
async def seeded(catalog_db: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the seeded catalog, for the repository's functions."""
    async with catalog_db.acquire() as conn:
        assert await seed(conn, now=NOW) == EVENT_COUNT
        assert await seed(conn, now=NOW) == 0  # a second seed is a no-op
        yield conn


async def test_seed_is_realistic(seeded: asyncpg.Connection, catalog_db: asyncpg.Pool) -> None:
    cities = await catalog_db.fetchval("SELECT count(DISTINCT city) FROM events")
    sizes = await catalog_db.fetch("SELECT capacity FROM venues")
    seats = await catalog_db.fetchval("SELECT count(*) FROM event_seats")
    total = await catalog_db.fetchval("SELECT sum(seats_total) FROM events")
    assert await catalog_db.fetchval("SELECT count(*) FROM events") >= 20
    assert cities >= 5
    assert all(1000 <= r["capacity"] <= 5000 for r in sizes)
    assert seats == total


async def test_pages_cover_every_event_once_in_order(seeded: asyncpg.Connection) -> None:
    seen: list[uuid.UUID] = []
    token = ""
    while True:
        query = q(page_size=7, page_token=token)
        rows, cursor = await repository.list_events(seeded, query)
        seen += [r.event_id for r in rows]
        if cursor is None:
            break
        token = cursor.encode(query.event_filter)
    assert len(seen) == len(set(seen)) == EVENT_COUNT
    everything, _ = await repository.list_events(seeded, q(page_size=100))
    assert [r.event_id for r in everything] == seen
    starts = [r.starts_at for r in everything]
    assert starts == sorted(starts)


async def test_city_and_date_filters(seeded: asyncpg.Connection) -> None:
    berlin, _ = await repository.list_events(seeded, q(city="berlin", page_size=100))
    assert berlin and all(r.venue.city == "Berlin" for r in berlin)
    window_end = NOW + timedelta(days=30)
    early, _ = await repository.list_events(seeded, q(starts_before=window_end, page_size=100))
    assert early and all(NOW <= r.starts_at < window_end for r in early)
    nowhere, cursor = await repository.list_events(seeded, q(city="Atlantis"))
    assert nowhere == [] and cursor is None


async def test_seat_map_in_seat_order_with_statuses(
    seeded: asyncpg.Connection, catalog_db: asyncpg.Pool
) -> None:
    event = (await repository.list_events(seeded, q(page_size=1)))[0][0]
    await catalog_db.execute(
        "UPDATE event_seats SET status = 'sold' WHERE event_id = $1 AND seat_id = 'FLOOR-R01-001'",
        event.event_id,
    )
    seats = await repository.get_seats(seeded, event.event_id)
    assert len(seats) == event.venue.capacity
    assert [s.seat_id for s in seats] == sorted(s.seat_id for s in seats)
    assert seats[0].status is SeatStatus.SOLD
    assert await repository.get_seats(seeded, uuid.uuid4()) == []
    assert await repository.get_event(seeded, uuid.uuid4()) is None


async def _plan(pool: asyncpg.Pool, sql: str, *args: object) -> str:
    async with pool.acquire() as conn:
        rows = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return json.dumps(json.loads(rows) if isinstance(rows, str) else rows)


async def test_queries_use_their_indexes(catalog_db: asyncpg.Pool) -> None:
    """With 20,000 events and 200,000 seats, each query reads its index; ListEvents
    is a keyset seek that never sorts."""
    await catalog_db.execute(
        """
        INSERT INTO venues (venue_id, name, city, capacity)
        SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
               'Venue ' || i, 'City ' || (i % 50), 1000
        FROM generate_series(1, 200) i;
        INSERT INTO events (venue_id, city, name, starts_at)
        SELECT v.venue_id, v.city, 'Event ' || g, now() + (g || ' hours')::interval
        FROM generate_series(1, 20000) g
        JOIN venues v ON v.venue_id =
             ('00000000-0000-4000-8000-' || lpad((1 + g % 200)::text, 12, '0'))::uuid;
        INSERT INTO event_seats
            (event_id, seat_id, section, row_label, number, price_cents, seat_index)
        SELECT e.event_id, 'A-R01-' || lpad(n::text, 3, '0'), 'A', 'R01', n, 1000, n - 1
        FROM (SELECT event_id FROM events LIMIT 2000) e, generate_series(1, 100) n;
        ANALYZE;
        """
    )
    for query in (q(page_size=20), q(city="City 7", page_size=20)):
        sql, args = list_events_args(query)
        plan = await _plan(catalog_db, sql, *args)
        expected = "events_by_city_start" if query.event_filter.city else "events_by_start"
        assert expected in plan, plan
        assert '"Sort"' not in plan, plan
    event_id = await catalog_db.fetchval("SELECT event_id FROM event_seats LIMIT 1")
    plan = await _plan(catalog_db, GET_SEATS, event_id)
    # Index or bitmap scan of the primary key; sorting ~100-5,000 rows of one event is cheap.
    assert "event_seats_pkey" in plan and '"Seq Scan"' not in plan, plan
