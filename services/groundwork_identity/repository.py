"""Identity's Postgres access: accounts, refresh-token families, signing keys."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import asyncpg

from groundwork_identity import keys

_KEYS_LOCK = 0x6777_6B65  # "gwke": one writer of signing keys at a time


@dataclass(frozen=True)
class Account:
    account_id: uuid.UUID
    email: str
    password_hash: str
    roles: list[str]


class Rotation(Enum):
    ROTATED = "rotated"
    REUSED = "reused"  # a used token came back: its family is now revoked
    INVALID = "invalid"  # unknown, expired or revoked


@dataclass(frozen=True)
class RotationResult:
    outcome: Rotation
    account_id: uuid.UUID | None = None
    roles: list[str] | None = None


class IdentityRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_account(self, email: str, password_hash: str, roles: list[str]) -> bool:
        row = await self._pool.fetchval(
            """INSERT INTO accounts (email, password_hash, roles) VALUES ($1, $2, $3)
               ON CONFLICT (email) DO NOTHING RETURNING account_id""",
            email,
            password_hash,
            roles,
        )
        return row is not None

    async def set_roles(self, email: str, roles: list[str]) -> bool:
        result: str = await self._pool.execute(
            "UPDATE accounts SET roles = $2 WHERE email = $1", email, roles
        )
        return result.endswith(" 1")

    async def find_account(self, email: str) -> Account | None:
        row = await self._pool.fetchrow(
            "SELECT account_id, email, password_hash, roles FROM accounts WHERE email = $1", email
        )
        return (
            Account(row["account_id"], row["email"], row["password_hash"], list(row["roles"]))
            if row
            else None
        )

    async def update_password_hash(self, account_id: uuid.UUID, password_hash: str) -> None:
        await self._pool.execute(
            "UPDATE accounts SET password_hash = $2 WHERE account_id = $1",
            account_id,
            password_hash,
        )

    async def start_family(self, token_hash: bytes, account_id: uuid.UUID, ttl: timedelta) -> None:
        await self._pool.execute(
            """INSERT INTO refresh_tokens (token_hash, family_id, account_id, expires_at)
               VALUES ($1, gen_random_uuid(), $2, now() + $3)""",
            token_hash,
            account_id,
            ttl,
        )

    async def rotate(self, old_hash: bytes, new_hash: bytes, ttl: timedelta) -> RotationResult:
        """Spend `old_hash` and issue `new_hash` in its family, atomically. The
        conditional UPDATE lets exactly one of two concurrent refreshes win."""
        async with self._pool.acquire() as conn, conn.transaction():
            spent = await conn.fetchrow(
                """UPDATE refresh_tokens SET used_at = now()
                   WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL
                     AND expires_at > now()
                   RETURNING family_id, account_id""",
                old_hash,
            )
            if spent:
                await conn.execute(
                    """INSERT INTO refresh_tokens (token_hash, family_id, account_id, expires_at)
                       VALUES ($1, $2, $3, now() + $4)""",
                    new_hash,
                    spent["family_id"],
                    spent["account_id"],
                    ttl,
                )
                roles = await conn.fetchval(
                    "SELECT roles FROM accounts WHERE account_id = $1", spent["account_id"]
                )
                return RotationResult(Rotation.ROTATED, spent["account_id"], list(roles))
            seen = await conn.fetchrow(
                "SELECT family_id, used_at FROM refresh_tokens WHERE token_hash = $1", old_hash
            )
            if seen and seen["used_at"] is not None:
                await conn.execute(
                    """UPDATE refresh_tokens SET revoked_at = now()
                       WHERE family_id = $1 AND revoked_at IS NULL""",
                    seen["family_id"],
                )
                return RotationResult(Rotation.REUSED)
            return RotationResult(Rotation.INVALID)

    async def revoke_family_of(self, token_hash: bytes) -> None:
        await self._pool.execute(
            """UPDATE refresh_tokens SET revoked_at = now()
               WHERE revoked_at IS NULL
                 AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)""",
            token_hash,
        )

    async def load_keys(self, kek: str) -> list[keys.SigningKey]:
        rows = await self._pool.fetch(
            "SELECT kid, private_key, public_jwk, active_from FROM signing_keys"
        )
        return [
            keys.SigningKey(
                r["kid"],
                keys.decrypt(kek, r["private_key"]),
                json.loads(r["public_jwk"]),
                r["active_from"],
            )
            for r in rows
        ]

    async def ensure_keys(
        self, kek: str, now: datetime, rotation: timedelta, prepublish: timedelta
    ) -> keys.SigningKey | None:
        """Create the next signing key when the policy says so. Returns it, if any."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEYS_LOCK)
            rows = await conn.fetch("SELECT kid, public_jwk, active_from FROM signing_keys")
            existing = [keys.SigningKey(r["kid"], b"", {}, r["active_from"]) for r in rows]
            activation = keys.next_activation(existing, now, rotation, prepublish)
            if activation is None:
                return None
            key = keys.new_key(activation)
            await conn.execute(
                """INSERT INTO signing_keys (kid, private_key, public_jwk, active_from)
                   VALUES ($1, $2, $3, $4)""",
                key.kid,
                keys.encrypt(kek, key.private_pem),
                json.dumps(key.public_jwk),
                key.active_from,
            )
            return key
