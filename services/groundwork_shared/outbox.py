"""Transactional outbox and its relay.

A service calls `enqueue` inside the transaction that changes its state, so the
event exists exactly when the change does. The relay publishes unpublished rows
to Redis Streams in `position` order and marks them; a crash between the two
republishes a row (at least once), which consumers absorb by event id. One relay
holds an advisory lock at a time, so events of one aggregate never overtake each
other; it survives Redis and Postgres restarts by retrying with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.bus import FIELD, STREAM_MAXLEN
from groundwork_shared.telemetry import background, current_traceparent, tracer
from groundwork_shared.transient import TRANSIENT

log = logging.getLogger(__name__)
_RELAY_LOCK = 0x6777_6F62  # "gwob"


async def enqueue(conn: asyncpg.Connection, stream: str, event: Envelope) -> None:
    """Publish `event` as part of the caller's transaction.

    This is the bus's publish span: the moment an event is decided is when it
    commits here, inside the request's trace; the relay's XADD later is transport.
    The envelope carries this span's context, so consumers become its children."""
    with tracer().start_as_current_span(
        f"{stream} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "redis",
            "messaging.destination.name": stream,
            "messaging.operation.type": "publish",
            "messaging.message.id": event.id,
            "groundwork.event.type": event.type,
        },
    ):
        event.traceparent, event.tracestate = current_traceparent()
        await conn.execute(
            "INSERT INTO outbox (stream, envelope) VALUES ($1, $2)",
            stream,
            event.SerializeToString(),
        )


class Relay:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, batch: int = 200) -> None:
        self._pool = pool
        self._redis = redis
        self._batch = batch

    async def run_once(self) -> int:
        """Publish what is pending; returns how many events went out (0 if another
        relay holds the lock)."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK):
                return 0
            try:
                rows = await conn.fetch(
                    """SELECT position, stream, envelope FROM outbox
                       WHERE published_at IS NULL ORDER BY position LIMIT $1""",
                    self._batch,
                )
                if not rows:
                    return 0
                # One round trip each way per batch. The pipeline keeps the order; if
                # it fails part-way nothing is marked, and the published part is sent
                # again (at least once; consumers absorb it by event id).
                async with self._redis.pipeline(transaction=False) as pipe:
                    for row in rows:
                        pipe.xadd(
                            row["stream"],
                            {FIELD: row["envelope"]},
                            maxlen=STREAM_MAXLEN,
                            approximate=True,
                        )
                    await pipe.execute()
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE position = ANY($1::bigint[])",
                    [row["position"] for row in rows],
                )
                return len(rows)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _RELAY_LOCK)

    async def run(self, stop: asyncio.Event, idle: float = 0.1, max_backoff: float = 5) -> None:
        with background():
            await self._loop(stop, idle, max_backoff)

    async def _loop(self, stop: asyncio.Event, idle: float, max_backoff: float) -> None:
        backoff = idle
        while not stop.is_set():
            try:
                sent = await self.run_once()
                backoff = idle
            except TRANSIENT as error:
                log.warning("outbox relay failed; retrying", extra={"error": repr(error)})
                sent = 0
                backoff = min(max_backoff, backoff * 2)
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
