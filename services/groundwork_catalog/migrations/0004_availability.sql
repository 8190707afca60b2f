-- Seat maps that cost kilobytes: a layout (immutable between admin edits, named
-- by a digest) and an availability (two bits per seat in layout order, at the
-- booking stream position it reflects), both kept in the events row so a read is
-- one primary-key lookup. The projection changes them in O(seats changed).

-- A seat's position in layout order (seat_id order: section, row, number).
ALTER TABLE event_seats ADD COLUMN seat_index integer CHECK (seat_index >= 0);
UPDATE event_seats s SET seat_index = o.i
FROM (SELECT event_id, seat_id,
             (row_number() OVER (PARTITION BY event_id ORDER BY seat_id) - 1)::integer AS i
      FROM event_seats) o
WHERE s.event_id = o.event_id AND s.seat_id = o.seat_id;
ALTER TABLE event_seats ALTER COLUMN seat_index SET NOT NULL;

ALTER TABLE events
    ADD COLUMN layout_version    text NOT NULL DEFAULT '',
    ADD COLUMN seats_held        integer NOT NULL DEFAULT 0 CHECK (seats_held >= 0),
    ADD COLUMN seats_sold        integer NOT NULL DEFAULT 0 CHECK (seats_sold >= 0),
    -- 2 bits a seat, seat i in byte i / 4 at bit 2 * (i % 4): 0 available, 1 held, 2 sold.
    ADD COLUMN seat_states       bytea NOT NULL DEFAULT '',
    -- The booking stream position ("ms-seq") of the last change applied.
    ADD COLUMN seats_version_ms  bigint NOT NULL DEFAULT 0,
    ADD COLUMN seats_version_seq bigint NOT NULL DEFAULT 0;

-- Everything above recomputed from event_seats: O(seats), for event creation and
-- this migration only; the projection never calls it.
CREATE FUNCTION catalog_rebuild_availability(target uuid) RETURNS void
LANGUAGE sql AS $$
    WITH codes AS (
        SELECT seat_index / 4 AS b,
               sum((CASE status WHEN 'held' THEN 1 WHEN 'sold' THEN 2 ELSE 0 END)
                   << (2 * (seat_index % 4))) AS v
        FROM event_seats WHERE event_id = target GROUP BY seat_index / 4),
    summary AS (
        SELECT left(md5(string_agg(seat_id || ':' || price_cents, ',' ORDER BY seat_id)), 16)
                   AS layout_version,
               count(*) FILTER (WHERE status = 'available') AS available,
               count(*) FILTER (WHERE status = 'held') AS held,
               count(*) FILTER (WHERE status = 'sold') AS sold
        FROM event_seats WHERE event_id = target)
    UPDATE events SET
        layout_version = summary.layout_version,
        seats_available = summary.available,
        seats_held = summary.held,
        seats_sold = summary.sold,
        seat_states = coalesce(
            (SELECT decode(string_agg(lpad(to_hex(v), 2, '0'), '' ORDER BY b), 'hex') FROM codes),
            '')
    FROM summary
    WHERE event_id = target
$$;

SELECT catalog_rebuild_availability(event_id) FROM events;

-- Recent changes, so a client that read version V can ask for what followed.
-- The projection prunes what is older than its retention.
CREATE TABLE seat_changes (
    event_id     uuid NOT NULL REFERENCES events ON DELETE CASCADE,
    version_ms   bigint NOT NULL,
    version_seq  bigint NOT NULL,
    seat_indexes integer[] NOT NULL,
    status       text NOT NULL CHECK (status IN ('available', 'held', 'sold')),
    PRIMARY KEY (event_id, version_ms, version_seq)
);
