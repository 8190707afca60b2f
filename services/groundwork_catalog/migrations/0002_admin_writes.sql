-- Admin writes: events are created from a venue's seat layout, and every write
-- honours an idempotency key.

CREATE TABLE venue_seats (
    venue_id  uuid NOT NULL REFERENCES venues ON DELETE CASCADE,
    seat_id   text NOT NULL CHECK (seat_id ~ '^[A-Z0-9]+-[A-Z0-9]+-[0-9]{3}$'),
    section   text NOT NULL,
    row_label text NOT NULL,
    number    integer NOT NULL CHECK (number > 0),
    -- CreateEvent copies a venue's layout in seat order.
    PRIMARY KEY (venue_id, seat_id)
);

-- Layouts of venues seeded before this migration, recovered from their events.
INSERT INTO venue_seats (venue_id, seat_id, section, row_label, number)
SELECT DISTINCT ON (e.venue_id, s.seat_id) e.venue_id, s.seat_id, s.section, s.row_label, s.number
FROM event_seats s JOIN events e USING (event_id)
ORDER BY e.venue_id, s.seat_id;

CREATE TABLE idempotency_keys (
    -- Scoped to the caller and the method: one client's key never answers another's.
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 8 AND 128),
    request_hash bytea NOT NULL,
    response     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
