-- Booking's own seat inventory, copied from the catalog the first time an event
-- is booked. A seat row is the unit of concurrency: every hold, release and sale
-- is one conditional UPDATE of it, so two buyers can never both win a seat.
CREATE TABLE seats (
    event_id    uuid NOT NULL,
    seat_id     text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    currency    char(3) NOT NULL,
    state       text NOT NULL DEFAULT 'available'
        CHECK (state IN ('available', 'held', 'sold')),
    hold_id     uuid,
    PRIMARY KEY (event_id, seat_id),
    -- A seat is available exactly when no hold owns it.
    CHECK ((state = 'available') = (hold_id IS NULL))
);
-- Releasing a hold finds its seats.
CREATE INDEX seats_by_hold ON seats (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE holds (
    hold_id    uuid PRIMARY KEY,
    user_id    text NOT NULL,
    event_id   uuid NOT NULL,
    seat_ids   text[] NOT NULL CHECK (cardinality(seat_ids) BETWEEN 1 AND 10),
    status     text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'released', 'expired', 'converted')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The sweeper's query: active holds past their expiry.
CREATE INDEX holds_expiring ON holds (expires_at) WHERE status = 'active';

CREATE TABLE orders (
    order_id     uuid PRIMARY KEY,
    -- One order per hold, ever.
    hold_id      uuid NOT NULL UNIQUE REFERENCES holds,
    user_id      text NOT NULL,
    event_id     uuid NOT NULL,
    seat_ids     text[] NOT NULL,
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency     char(3) NOT NULL,
    status       text NOT NULL DEFAULT 'pending_payment'
        CHECK (status IN ('pending_payment', 'paid', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- ListMyOrders: a user's orders, newest first.
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, order_id);

--! include idempotency.sql
--! include outbox.sql
