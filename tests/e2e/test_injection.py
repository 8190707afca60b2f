"""SQL and script payloads in every string field are stored verbatim or refused,
never executed: queries are parameterized. The database is checked afterwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from groundwork_cli.runtime.plan import service_database_url
from tests.e2e.conftest import PASSWORD, Mesh

PAYLOADS = [
    "'); DROP TABLE events; --",
    "' OR '1'='1",
    "<script>alert('x')</script>",
    "Robert'); DELETE FROM accounts; --",
]


async def _scalar(mesh: Mesh, database: str, sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(service_database_url(mesh.plan, database))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def test_payloads_in_catalog_strings(mesh: Mesh) -> None:
    before = asyncio.run(_scalar(mesh, "catalog", "SELECT count(*) FROM events"))
    for payload in PAYLOADS:
        reply = httpx.get(f"{mesh.http}/v1/events", params={"city": payload})
        assert reply.status_code == 200 and reply.json()["events"] == []
        assert httpx.get(f"{mesh.http}/v1/events/{payload}").status_code in (400, 404)
    admin = {"authorization": f"Bearer {mesh.admin_token()}"}
    venue = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1}).json()["events"][0]
    created = []
    for payload in PAYLOADS:
        reply = httpx.post(
            f"{mesh.http}/v1/events",
            headers=admin,
            json={
                "venue_id": venue["venue"]["venue_id"],
                "name": payload,
                "starts_at": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
                "section_prices": {"FLOOR": 1, "LOWER": 1, "UPPER": 1},
                "idempotency_key": f"inj-{uuid.uuid4()}",
                "currency": "EUR",
            },
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["name"] == payload  # stored and returned verbatim
        created.append(reply.json()["event_id"])
        bad = httpx.post(
            f"{mesh.http}/v1/events",
            headers=admin,
            json={
                "venue_id": payload,
                "name": "x",
                "starts_at": "2030-01-01T00:00:00Z",
                "section_prices": {payload: 1},
                "idempotency_key": payload,
                "currency": payload,
            },
        )
        assert bad.status_code == 400
    after = asyncio.run(_scalar(mesh, "catalog", "SELECT count(*) FROM events"))
    assert after == before + len(PAYLOADS)
    stored = asyncio.run(
        _scalar(
            mesh,
            "catalog",
            "SELECT array_agg(name) FROM events WHERE event_id = ANY($1::uuid[])",
            created,
        )
    )
    assert sorted(stored) == sorted(PAYLOADS)


def test_payloads_in_identity_strings(mesh: Mesh) -> None:
    accounts = asyncio.run(_scalar(mesh, "identity", "SELECT count(*) FROM accounts"))
    for payload in PAYLOADS:
        login = httpx.post(
            f"{mesh.http}/v1/auth/login", json={"email": payload, "password": payload}
        )
        assert login.status_code in (400, 401)
        signup = httpx.post(
            f"{mesh.http}/v1/auth/signup", json={"email": payload, "password": PASSWORD}
        )
        assert signup.status_code == 400  # not an email address
        refresh = httpx.post(f"{mesh.http}/v1/auth/refresh", json={"refresh_token": payload})
        assert refresh.status_code == 401
    quoted = f"o'hara+{uuid.uuid4().hex[:6]}@example.com"
    assert (
        httpx.post(
            f"{mesh.http}/v1/auth/signup", json={"email": quoted, "password": PASSWORD}
        ).status_code
        == 200
    )
    assert mesh.login(quoted, PASSWORD)["access_token"]
    assert asyncio.run(_scalar(mesh, "identity", "SELECT count(*) FROM accounts")) == accounts + 1
    assert asyncio.run(_scalar(mesh, "identity", "SELECT to_regclass('accounts') IS NOT NULL"))
