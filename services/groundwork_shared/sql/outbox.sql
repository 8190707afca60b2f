-- Transactional outbox: events are written here in the same transaction as the
-- state change they announce; the relay publishes them to Redis Streams in order.
CREATE TABLE outbox (
    position     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       text NOT NULL,
    envelope     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
-- The relay's only query: unpublished rows in order.
CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL;
