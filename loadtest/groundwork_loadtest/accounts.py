"""Customers' accounts and tokens, prepared before a timed run: a sale measures
the sale, not sign-up (argon2id is slow by design, and a real on-sale's
customers arrive logged in).

Accounts are kept in a file with their refresh tokens: the first run signs up
and logs in (argon2id, once per account); later runs refresh (a SHA-256 lookup),
which rotates the refresh token, so the file is rewritten after each run. An
account whose refresh no longer works (the mesh was purged) logs in or signs up
again. Plain asyncio and httpx: this runs before Locust, outside gevent."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PASSWORD = "load-test password 1"


@dataclass
class Prepared:
    tokens: list[str]
    seconds: float
    refreshed: int = 0
    logged_in: int = 0
    signed_up: int = 0
    failures: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{len(self.tokens)} customers ready in {self.seconds:.1f}s "
            f"({self.refreshed} refreshed, {self.logged_in} logged in, "
            f"{self.signed_up} signed up)"
        )


async def _session(
    client: httpx.AsyncClient, email: str, refresh: str | None, result: Prepared
) -> dict[str, str] | None:
    if refresh:
        reply = await client.post("/v1/auth/refresh", json={"refresh_token": refresh})
        if reply.status_code == 200:
            result.refreshed += 1
            return dict(reply.json())
    body = {"email": email, "password": PASSWORD}
    reply = await client.post("/v1/auth/login", json=body)
    if reply.status_code == 200:
        result.logged_in += 1
        return dict(reply.json())
    signup = await client.post("/v1/auth/signup", json=body)
    if signup.status_code != 200:
        result.failures.append(f"signup {email}: {signup.status_code} {signup.text[:120]}")
        return None
    reply = await client.post("/v1/auth/login", json=body)
    if reply.status_code != 200:
        result.failures.append(f"login {email}: {reply.status_code} {reply.text[:120]}")
        return None
    result.signed_up += 1
    return dict(reply.json())


def prepare(host: str, count: int, store: Path, concurrency: int = 16) -> Prepared:
    """Access tokens for `count` customers, from (and back into) `store`."""
    started = time.monotonic()
    known: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    emails = list(known)[:count]
    emails += [f"customer-{uuid.uuid4().hex[:16]}@example.com" for _ in range(count - len(emails))]
    result = Prepared([], 0.0)
    sessions = asyncio.run(_sessions(host, emails, known, result, concurrency))
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps({**known, **{e: s["refresh_token"] for e, s in sessions.items()}}))
    result.tokens = [sessions[e]["access_token"] for e in emails if e in sessions]
    result.seconds = time.monotonic() - started
    return result


async def _sessions(
    host: str, emails: list[str], known: dict[str, str], result: Prepared, concurrency: int
) -> dict[str, dict[str, str]]:
    gate = asyncio.Semaphore(concurrency)
    sessions: dict[str, dict[str, str]] = {}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=host, timeout=60, limits=limits) as client:

        async def one(email: str) -> None:
            async with gate:
                session = await _session(client, email, known.get(email), result)
            if session is not None:
                sessions[email] = session

        await asyncio.gather(*(one(e) for e in emails))
    return sessions
