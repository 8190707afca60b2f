"""A realistic, deterministic sample catalog: venues of 1,000-5,000 seats in
several cities and a few dozen upcoming events, each with its full seat map."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from groundwork_catalog.domain import seat_id

# (city, venue, capacity)
VENUES = [
    ("Berlin", "Spreehalle", 4800),
    ("Berlin", "Kesselhaus Arena", 1200),
    ("Lisbon", "Coliseu do Tejo", 3600),
    ("Amsterdam", "Amstel Music Hall", 2400),
    ("Barcelona", "Sala Montjuic", 5000),
    ("Prague", "Vltava Forum", 1800),
    ("Vienna", "Donauhalle", 3000),
    ("Copenhagen", "Havnescenen", 1000),
]

ACTS = [
    "The Midnight Protocol",
    "Latency & The Spikes",
    "Nora Quic",
    "Backpressure",
    "The Idempotent Keys",
    "Three-Way Handshake",
    "Head-of-Line",
    "Orchestra of Replicas",
    "Consensus",
    "Eventually Consistent",
    "The Circuit Breakers",
    "Write-Ahead Log",
]
KINDS = ["Live", "World Tour", "Acoustic Night", "Festival Special"]

# (section, share of capacity, price in cents)
SECTIONS = [("FLOOR", 0.2, 9900), ("LOWER", 0.4, 6900), ("UPPER", 0.4, 3900)]
SEATS_PER_ROW = 40
EVENT_COUNT = 24


@dataclass(frozen=True)
class SeatSpec:
    seat_id: str
    section: str
    row_label: str
    number: int
    price_cents: int


def seat_layout(capacity: int) -> list[SeatSpec]:
    """Exactly `capacity` seats, split into priced sections of 40-seat rows."""
    seats: list[SeatSpec] = []
    remaining = capacity
    for index, (section, share, price) in enumerate(SECTIONS):
        count = remaining if index == len(SECTIONS) - 1 else round(capacity * share)
        remaining -= count
        for n in range(count):
            row, number = divmod(n, SEATS_PER_ROW)
            label = f"R{row + 1:02d}"
            seats.append(
                SeatSpec(seat_id(section, label, number + 1), section, label, number + 1, price)
            )
    return seats


async def seed(
    conn: asyncpg.Connection, *, now: datetime | None = None, reset: bool = False
) -> int:
    """Load the sample unless events exist (or `reset`). Returns events created."""
    rng = random.Random(42)
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with conn.transaction():
        if reset:
            await conn.execute("TRUNCATE event_seats, events, venue_seats, venues")
        elif await conn.fetchval("SELECT EXISTS (SELECT 1 FROM events)"):
            return 0
        venues = [(uuid.UUID(int=rng.getrandbits(128), version=4), *v) for v in VENUES]
        await conn.copy_records_to_table(
            "venues", records=venues, columns=["venue_id", "city", "name", "capacity"]
        )
        for venue_id, _, _, capacity in venues:
            await conn.copy_records_to_table(
                "venue_seats",
                records=[
                    (venue_id, s.seat_id, s.section, s.row_label, s.number)
                    for s in seat_layout(capacity)
                ],
                columns=["venue_id", "seat_id", "section", "row_label", "number"],
            )
        for n in range(EVENT_COUNT):
            venue_id, city, _, capacity = venues[n % len(venues)]
            event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            starts_at = today + timedelta(days=3 + n * 4 + rng.randrange(3), hours=19 + n % 3)
            name = f"{ACTS[n % len(ACTS)]} — {KINDS[rng.randrange(len(KINDS))]}"
            layout = sorted(seat_layout(capacity), key=lambda s: s.seat_id)  # layout order
            await conn.execute(
                """INSERT INTO events (event_id, venue_id, city, name, starts_at, seats_total,
                                       seats_available, min_price_cents)
                   VALUES ($1, $2, $3, $4, $5, $6, $6, $7)""",
                event_id,
                venue_id,
                city,
                name,
                starts_at,
                len(layout),
                min(s.price_cents for s in layout),
            )
            await conn.copy_records_to_table(
                "event_seats",
                records=[
                    (event_id, s.seat_id, s.section, s.row_label, s.number, s.price_cents, i)
                    for i, s in enumerate(layout)
                ],
                columns=[
                    "event_id",
                    *("seat_id", "section", "row_label", "number", "price_cents", "seat_index"),
                ],
            )
            await conn.execute("SELECT catalog_rebuild_availability($1)", event_id)
        await conn.execute("ANALYZE venues; ANALYZE events; ANALYZE event_seats")
    return EVENT_COUNT
