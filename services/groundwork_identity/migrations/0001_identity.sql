CREATE TABLE accounts (
    account_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Normalized (trimmed, lower case) by the service before it gets here.
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{user}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Login looks accounts up by email; also what makes an email unique.
CREATE UNIQUE INDEX accounts_by_email ON accounts (email);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token: a copy of this table yields no usable token.
    token_hash  bytea PRIMARY KEY,
    -- Every token descended from one login shares a family; reuse revokes it all.
    family_id   uuid NOT NULL,
    account_id  uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
-- Revoking a family.
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    -- PKCS#8 private key, encrypted with the key-encryption key from settings.
    private_key  bytea NOT NULL,
    public_jwk   jsonb NOT NULL,
    -- Signs from this instant until the next key's active_from. Published in the
    -- JWKS before (so caches have it) and after (until its tokens have expired).
    active_from  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
