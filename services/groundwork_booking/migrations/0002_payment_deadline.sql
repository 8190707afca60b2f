-- An order must be paid by a deadline; the sweeper cancels it after that and
-- frees its seats, so an abandoned order cannot keep seats forever.
ALTER TABLE orders ADD COLUMN pay_by timestamptz;
UPDATE orders SET pay_by = created_at + interval '15 minutes';
ALTER TABLE orders ALTER COLUMN pay_by SET NOT NULL;
-- The sweeper's query: unpaid orders past their deadline.
CREATE INDEX orders_unpaid ON orders (pay_by) WHERE status = 'pending_payment';
