"""order_paid -> tickets, exactly once through the real bus; tokens verify offline."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import asyncpg
import jwt
from redis.asyncio import Redis

from groundwork.booking.v1 import events_pb2
from groundwork_shared.bus import Consumer, ConsumerConfig, publish
from groundwork_shared.events import envelope
from groundwork_shared.migrations import migrate
from groundwork_ticketing import MIGRATIONS
from groundwork_ticketing.domain import ISSUER
from groundwork_ticketing.signing import TicketSigner, new_signing_key
from groundwork_ticketing.workers import TicketIssuer


async def test_tickets_are_issued_once_and_verify_offline(
    fresh_database: str, redis_server: str
) -> None:
    await migrate(fresh_database, Path(MIGRATIONS))
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=4)
    assert pool is not None
    redis = Redis.from_url(redis_server)
    signer = TicketSigner(base64.b64decode(new_signing_key()))
    stream = f"booking-{uuid.uuid4().hex[:6]}"
    paid = envelope(
        "booking.order_paid",
        "o-9",
        events_pb2.OrderPaid(
            order_id="o-9",
            event_id="e-1",
            user_id="u-1",
            seat_ids=["A-R01-001", "A-R01-002"],
            amount_cents=100,
            charge_id="c-1",
        ),
    )
    for _ in range(3):  # delivered three times, as after crashes
        await publish(redis, stream, paid)
    consumer = Consumer(
        redis,
        pool,
        ConsumerConfig(stream, "ticketing", "t-0", block_ms=50),
        TicketIssuer(signer).apply,
    )
    await consumer.ensure_group()
    while await consumer.poll():
        pass
    rows = await pool.fetch("SELECT seat_id, user_id, token FROM tickets ORDER BY seat_id")
    assert [r["seat_id"] for r in rows] == ["A-R01-001", "A-R01-002"]
    public = jwt.PyJWK(signer.jwk)
    claims = jwt.decode(rows[0]["token"], public, algorithms=["EdDSA"], issuer=ISSUER)
    assert (claims["sub"], claims["order"], claims["seat"]) == ("u-1", "o-9", "A-R01-001")
    forged = rows[0]["token"][:-4] + ("AAAA" if not rows[0]["token"].endswith("AAAA") else "BBBB")
    try:
        jwt.decode(forged, public, algorithms=["EdDSA"], issuer=ISSUER)
        raise AssertionError("a tampered ticket verified")
    except jwt.InvalidSignatureError:
        pass
    await redis.aclose()
    await pool.close()
