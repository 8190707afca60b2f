-- Events this service has applied, recorded in the same transaction as their
-- effect: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
