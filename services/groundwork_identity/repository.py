"""Identity's SQL: accounts, refresh-token families, signing keys. Each function
runs on the caller's connection, inside the caller's transaction when it has one."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import asyncpg

from groundwork_identity import keys
from groundwork_identity.domain import Account, SeenToken, SpentToken

_KEYS_LOCK = 0x6777_6B65  # "gwke": one writer of signing keys at a time


async def create_account(
    conn: asyncpg.Connection, email: str, password_hash: str, roles: list[str]
) -> bool:
    row = await conn.fetchval(
        """INSERT INTO accounts (email, password_hash, roles) VALUES ($1, $2, $3)
           ON CONFLICT (email) DO NOTHING RETURNING account_id""",
        email,
        password_hash,
        roles,
    )
    return row is not None


async def find_account(conn: asyncpg.Connection, email: str) -> Account | None:
    row = await conn.fetchrow(
        "SELECT account_id, email, password_hash, roles FROM accounts WHERE email = $1", email
    )
    if row is None:
        return None
    return Account(row["account_id"], row["email"], row["password_hash"], list(row["roles"]))


async def roles_of(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[str]:
    return list(await conn.fetchval("SELECT roles FROM accounts WHERE account_id = $1", account_id))


async def update_password_hash(
    conn: asyncpg.Connection, account_id: uuid.UUID, password_hash: str
) -> None:
    await conn.execute(
        "UPDATE accounts SET password_hash = $2 WHERE account_id = $1", account_id, password_hash
    )


async def start_family(
    conn: asyncpg.Connection, token_hash: bytes, account_id: uuid.UUID, ttl: timedelta
) -> None:
    await conn.execute(
        """INSERT INTO refresh_tokens (token_hash, family_id, account_id, expires_at)
           VALUES ($1, gen_random_uuid(), $2, now() + $3)""",
        token_hash,
        account_id,
        ttl,
    )


async def spend(conn: asyncpg.Connection, token_hash: bytes) -> SpentToken | None:
    """Mark a live token used. The conditional UPDATE lets exactly one of two
    concurrent refreshes win; the other matches nothing."""
    row = await conn.fetchrow(
        """UPDATE refresh_tokens SET used_at = now()
           WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL
             AND expires_at > now()
           RETURNING family_id, account_id""",
        token_hash,
    )
    return SpentToken(row["family_id"], row["account_id"]) if row else None


async def continue_family(
    conn: asyncpg.Connection, token_hash: bytes, spent: SpentToken, ttl: timedelta
) -> None:
    await conn.execute(
        """INSERT INTO refresh_tokens (token_hash, family_id, account_id, expires_at)
           VALUES ($1, $2, $3, now() + $4)""",
        token_hash,
        spent.family_id,
        spent.account_id,
        ttl,
    )


async def seen(conn: asyncpg.Connection, token_hash: bytes) -> SeenToken | None:
    row = await conn.fetchrow(
        "SELECT family_id, used_at FROM refresh_tokens WHERE token_hash = $1", token_hash
    )
    return SeenToken(row["family_id"], row["used_at"]) if row else None


async def revoke_family(conn: asyncpg.Connection, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )


async def revoke_family_of(conn: asyncpg.Connection, token_hash: bytes) -> None:
    await conn.execute(
        """UPDATE refresh_tokens SET revoked_at = now()
           WHERE revoked_at IS NULL
             AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)""",
        token_hash,
    )


async def lock_keys(conn: asyncpg.Connection) -> None:
    """Serialise key writers until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEYS_LOCK)


async def load_keys(conn: asyncpg.Connection, kek: str) -> list[keys.SigningKey]:
    """Every signing key, its private key decrypted with `kek`."""
    rows = await conn.fetch("SELECT kid, private_key, public_jwk, active_from FROM signing_keys")
    return [
        keys.SigningKey(
            r["kid"],
            keys.decrypt(kek, r["private_key"]),
            json.loads(r["public_jwk"]),
            r["active_from"],
        )
        for r in rows
    ]


async def key_schedule(conn: asyncpg.Connection) -> list[keys.SigningKey]:
    """Every signing key's kid and activation, without its key material."""
    rows = await conn.fetch("SELECT kid, active_from FROM signing_keys")
    return [keys.SigningKey(r["kid"], b"", {}, r["active_from"]) for r in rows]


async def insert_key(conn: asyncpg.Connection, kek: str, key: keys.SigningKey) -> None:
    """Store a new key, its private half encrypted at rest with `kek`."""
    await conn.execute(
        """INSERT INTO signing_keys (kid, private_key, public_jwk, active_from)
           VALUES ($1, $2, $3, $4)""",
        key.kid,
        keys.encrypt(kek, key.private_pem),
        json.dumps(key.public_jwk),
        key.active_from,
    )
