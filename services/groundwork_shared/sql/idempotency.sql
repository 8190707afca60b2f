-- Write APIs' idempotency keys (see groundwork_shared.idempotency).
CREATE TABLE idempotency_keys (
    -- Scoped to the caller and the method: one client's key never answers another's.
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 8 AND 128),
    request_hash bytea NOT NULL,
    response     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
