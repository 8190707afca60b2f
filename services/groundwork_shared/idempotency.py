"""Idempotency keys for write APIs: a retry with the same key returns the first
result, and the key is recorded in the same transaction as the write, so a
failure leaves neither. Reusing a key for a different request is an error.

Each service's schema holds an `idempotency_keys (scope, key, request_hash,
response)` table; the primary key (scope, key) makes concurrent duplicates wait
for the first one and then read its result."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from groundwork_shared.errors import FailedPrecondition, InvalidArgument

M = TypeVar("M", bound=Message)


class KeyReused(FailedPrecondition):
    """The key was used before for a different request."""


def validate_key(key: str) -> None:
    if not 8 <= len(key) <= 128 or not key.isprintable():
        raise InvalidArgument.one("idempotency_key", "8 to 128 printable characters")


async def once(
    conn: asyncpg.Connection,
    scope: str,
    key: str,
    request: Message,
    response_type: type[M],
    write: Callable[[asyncpg.Connection], Awaitable[M]],
) -> M:
    """Run `write` inside a transaction at most once per (scope, key)."""
    validate_key(key)
    request_hash = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
    async with conn.transaction():
        claimed = await conn.fetchval(
            """INSERT INTO idempotency_keys (scope, key, request_hash, response)
               VALUES ($1, $2, $3, '') ON CONFLICT DO NOTHING RETURNING true""",
            scope,
            key,
            request_hash,
        )
        if not claimed:
            row = await conn.fetchrow(
                "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
                scope,
                key,
            )
            if row["request_hash"] != request_hash:
                raise KeyReused("idempotency_key was already used for a different request")
            return response_type.FromString(row["response"])
        response = await write(conn)
        await conn.execute(
            "UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2",
            scope,
            key,
            response.SerializeToString(deterministic=True),
        )
        return response
