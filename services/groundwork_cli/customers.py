"""Customers for a benchmark on the local mesh, made in bulk before it starts:
real accounts in identity's database (one argon2id hash shared by all, computed
once) and access tokens signed with identity's current key, as identity signs
them. Thousands in a second, where sign-up and login through the API cost two
argon2id hashes each (by design). Local only: it reads identity's key with the
mesh's own key-encryption key."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from groundwork_cli.runtime.plan import Plan, service_database_url
from groundwork_loadtest.accounts import PASSWORD, Prepared


async def _mint(plan: Plan, count: int, ttl: timedelta) -> list[str]:
    from groundwork_identity.keys import current
    from groundwork_identity.passwords import hash_password
    from groundwork_identity.tokens import TokenPolicy, access_token
    from groundwork_identity.workers import load_keys

    password_hash = await hash_password(PASSWORD)
    prefix = uuid.uuid4().hex[:12]
    emails = [f"bench-{prefix}-{i}@example.com" for i in range(count)]
    pool = await asyncpg.create_pool(service_database_url(plan, "identity"), min_size=1, max_size=1)
    assert pool is not None
    try:
        # One statement for all: repository.create_account makes one at a time.
        ids = await pool.fetch(
            """INSERT INTO accounts (email, password_hash)
               SELECT unnest($1::text[]), $2 RETURNING account_id""",
            emails,
            password_hash,
        )
        signing_keys = await load_keys(pool, plan.secrets.identity_kek())
    finally:
        await pool.close()
    now = datetime.now(UTC)
    key = current(signing_keys, now)
    if key is None:
        raise RuntimeError("identity has no signing key yet")
    policy = TokenPolicy(plan.mesh.auth.issuer, plan.mesh.auth.audience, ttl, ttl)
    return [access_token(key, policy, str(r["account_id"]), ["user"], now) for r in ids]


def mint(plan: Plan, count: int, ttl: timedelta = timedelta(minutes=30)) -> Prepared:
    started = time.monotonic()
    tokens = asyncio.run(_mint(plan, count, ttl))
    return Prepared(tokens, time.monotonic() - started, signed_up=len(tokens))
