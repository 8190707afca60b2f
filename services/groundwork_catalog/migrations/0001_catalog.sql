-- Catalog schema. Each index below serves one query in repository.py; the
-- integration tests EXPLAIN those queries and fail if an index stops being used.

CREATE TABLE venues (
    venue_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    city      text NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    capacity  integer NOT NULL CHECK (capacity > 0),
    -- Target of the events' composite foreign key: keeps events.city true.
    UNIQUE (venue_id, city)
);

CREATE TABLE events (
    event_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    venue_id        uuid NOT NULL,
    -- Copied from the venue so that "events in a city, by date" is one index range
    -- scan with no join and no sort; the foreign key below forbids it drifting.
    city            text NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    starts_at       timestamptz NOT NULL,
    currency        char(3) NOT NULL DEFAULT 'EUR',
    -- Read-model counters, updated in the same transaction as event_seats.
    seats_total     integer NOT NULL DEFAULT 0 CHECK (seats_total >= 0),
    seats_available integer NOT NULL DEFAULT 0
        CHECK (seats_available BETWEEN 0 AND seats_total),
    min_price_cents bigint NOT NULL DEFAULT 0 CHECK (min_price_cents >= 0),
    FOREIGN KEY (venue_id, city) REFERENCES venues (venue_id, city) ON UPDATE CASCADE
);

-- ListEvents, no city: keyset pagination over (starts_at, event_id).
CREATE INDEX events_by_start ON events (starts_at, event_id);
-- ListEvents, one city (case-insensitive): equality prefix, then the same keyset.
CREATE INDEX events_by_city_start ON events (lower(city), starts_at, event_id);
-- (GetEvent uses the primary key.)

CREATE TABLE event_seats (
    event_id    uuid NOT NULL REFERENCES events ON DELETE CASCADE,
    -- "SECTION-ROW-NNN": sorts in seat-map order, so GetSeatMap reads the primary
    -- key in order and never sorts.
    seat_id     text NOT NULL CHECK (seat_id ~ '^[A-Z0-9]+-[A-Z0-9]+-[0-9]{3}$'),
    section     text NOT NULL,
    row_label   text NOT NULL,
    number      integer NOT NULL CHECK (number > 0),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    status      text NOT NULL DEFAULT 'available'
        CHECK (status IN ('available', 'held', 'sold')),
    PRIMARY KEY (event_id, seat_id)
);
