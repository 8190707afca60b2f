CREATE TABLE charges (
    charge_id      uuid PRIMARY KEY,
    order_id       text NOT NULL,
    amount_cents   bigint NOT NULL CHECK (amount_cents > 0),
    currency       char(3) NOT NULL,
    status         text NOT NULL CHECK (status IN ('approved', 'declined')),
    decline_reason text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- At most one approved charge per order, whatever the keys.
CREATE UNIQUE INDEX one_approved_charge_per_order ON charges (order_id) WHERE status = 'approved';

--! include idempotency.sql
