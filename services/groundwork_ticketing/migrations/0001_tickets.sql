CREATE TABLE tickets (
    ticket_id  uuid PRIMARY KEY,
    order_id   text NOT NULL,
    user_id    text NOT NULL,
    event_id   text NOT NULL,
    seat_id    text NOT NULL,
    token      text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    -- However often order_paid arrives, one ticket per seat of the order.
    UNIQUE (order_id, seat_id)
);
-- GetMyTickets.
CREATE INDEX tickets_by_user ON tickets (user_id, issued_at DESC);

--! include inbox.sql
