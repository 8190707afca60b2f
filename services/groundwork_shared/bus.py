"""The event bus on Redis Streams: one stream per producing service, one
consumer group per consuming service, at-least-once delivery made exactly-once
in effect by recording each event id in the same transaction as its effect.

Messages stuck with a dead consumer are taken over with XAUTOCLAIM; a message
that fails `max_deliveries` times, or cannot be decoded, goes to the stream's
dead-letter stream (`<stream>.dlq`) with the reason, and is acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared import positions
from groundwork_shared.metrics import BUS_APPLIED, BUS_DEAD_LETTERED, BUS_LAG, BUS_REDELIVERED
from groundwork_shared.telemetry import background, continued
from groundwork_shared.transient import TRANSIENT

log = logging.getLogger(__name__)

FIELD = b"e"
STREAM_MAXLEN = 1_000_000  # approximate trim: bounded memory, weeks of events
# (the transaction, the event, its stream position "ms-seq")
Handler = Callable[[asyncpg.Connection, Envelope, str], Awaitable[None]]
_EXCLUSIVE_LOCK = "groundwork.bus.exclusive"


async def publish(redis: Redis, stream: str, event: Envelope, maxlen: int = STREAM_MAXLEN) -> str:
    message_id = await redis.xadd(
        stream, {FIELD: event.SerializeToString()}, maxlen=maxlen, approximate=True
    )
    return message_id.decode() if isinstance(message_id, bytes) else str(message_id)


class Undecodable(Exception):
    """A stream entry that holds no readable envelope."""

    def __init__(self, raw: bytes, reason: str) -> None:
        super().__init__(reason)
        self.raw = raw
        self.reason = reason


def decode(fields: dict[Any, Any]) -> Envelope:
    """The envelope in a stream entry's fields (read with or without decode_responses)."""
    raw = fields.get(FIELD) or fields.get(FIELD.decode())
    if raw is None:
        raise Undecodable(b"", "message has no envelope")
    try:
        return Envelope.FromString(raw)
    except DecodeError as error:
        raise Undecodable(raw, "undecodable envelope") from error


def dead_letter_stream(stream: str) -> str:
    return f"{stream}.dlq"


@dataclass(frozen=True)
class ConsumerConfig:
    stream: str
    group: str  # the consuming service
    consumer: str  # this instance
    max_deliveries: int = 5
    claim_idle_ms: int = 30_000  # pending this long with a consumer = presumed dead
    block_ms: int = 1_000
    batch: int = 32
    reclaim_every: float = 5.0
    # One consumer of the group at a time (the others stand by): the stream is
    # then applied in its own order, which a projection that publishes versions
    # (stream positions) needs. The holder of a Postgres advisory lock consumes.
    exclusive: bool = False


class Consumer:
    def __init__(
        self, redis: Redis, pool: asyncpg.Pool, config: ConsumerConfig, handler: Handler
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._config = config
        self._handler = handler
        self.applied = 0
        self.redelivered = 0
        self.dead_lettered = 0

    async def ensure_group(self) -> None:
        """Create the group at the start of the stream: a new consumer sees history."""
        try:
            await self._redis.xgroup_create(
                self._config.stream, self._config.group, id="0", mkstream=True
            )
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the message in hand is finished first."""
        # Polls are not traced; each message's handling is, in its producer's trace.
        with background():
            await self._consume(stop)

    async def _consume(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        if not self._config.exclusive:
            await self._consume_while(stop, lambda: True)
            return
        while not stop.is_set():
            try:
                async with self._pool.acquire() as lock:
                    key = f"{_EXCLUSIVE_LOCK}:{self._config.stream}:{self._config.group}"
                    if await lock.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                        try:
                            # Whatever a previous holder left pending comes first, in order.
                            await self.take_over()
                            await self._consume_while(stop, lambda: not lock.is_closed())
                        finally:
                            if not lock.is_closed():
                                await lock.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
            except TRANSIENT as error:
                log.warning("exclusive consumer interrupted", extra={"error": repr(error)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1)  # standing by

    async def take_over(self) -> int:
        """Claim every pending entry of the group, whoever had it, and apply it."""
        taken, cursor = 0, positions.ORIGIN
        while True:
            claimed, cursor = await self._claim(min_idle_ms=0, start=cursor)
            taken += claimed
            if cursor == positions.ORIGIN:
                return taken

    async def _consume_while(self, stop: asyncio.Event, holding: Callable[[], bool]) -> None:
        last_reclaim = 0.0
        c = self._config
        while not stop.is_set() and holding():
            try:
                if time.monotonic() - last_reclaim >= c.reclaim_every:
                    await self.reclaim()
                    BUS_LAG.labels(c.stream, c.group).set(await self.lag())
                    last_reclaim = time.monotonic()
                await self.poll()
            except (RedisError, OSError) as error:
                log.warning("bus unavailable; retrying", extra={"error": repr(error)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)

    async def poll(self) -> int:
        c = self._config
        reply: Any = await self._redis.xreadgroup(
            c.group, c.consumer, {c.stream: ">"}, count=c.batch, block=c.block_ms
        )
        handled = 0
        for _, messages in reply or []:
            for message_id, fields in messages:
                await self._deliver(message_id, fields, deliveries=1)
                handled += 1
        return handled

    async def reclaim(self) -> int:
        """Take over messages idle past claim_idle_ms (their consumer died or failed)."""
        claimed, _ = await self._claim(self._config.claim_idle_ms, positions.ORIGIN)
        return claimed

    async def _claim(self, min_idle_ms: int, start: str) -> tuple[int, str]:
        """Claim up to a batch of pending entries idle at least `min_idle_ms` from
        `start` and deliver them, counting earlier deliveries; returns (claimed, next
        cursor). One entry per XAUTOCLAIM: Redis counts a delivery for every entry it
        claims, so entries claimed as a batch and not yet tried when this consumer
        died, or was slow past claim_idle_ms and was claimed from in turn, would be
        charged deliveries they never had, and a good event could be dead-lettered."""
        c = self._config
        claimed, cursor = 0, start
        while claimed < c.batch:
            reply = await self._redis.xautoclaim(
                c.stream, c.group, c.consumer, min_idle_time=min_idle_ms, start_id=cursor, count=1
            )
            cursor = positions.text(reply[0])
            for message_id, fields in reply[1]:
                pending = await self._redis.xpending_range(
                    c.stream, c.group, min=message_id, max=message_id, count=1
                )
                if not pending:
                    continue  # acknowledged since, by the consumer it was taken from
                deliveries = int(pending[0]["times_delivered"])
                self.redelivered += 1
                claimed += 1
                BUS_REDELIVERED.labels(c.stream, c.group).inc()
                await self._deliver(message_id, fields, deliveries)
            if cursor == positions.ORIGIN:
                break
        return claimed, cursor

    async def _deliver(self, message_id: Any, fields: dict[Any, Any], deliveries: int) -> None:
        c = self._config
        try:
            event = decode(fields)
        except Undecodable as bad:
            await self._dead_letter(message_id, bad.raw, bad.reason)
            return
        if deliveries > c.max_deliveries:
            raw = event.SerializeToString()
            await self._dead_letter(message_id, raw, f"failed {deliveries - 1} deliveries")
            return
        try:
            with continued(
                f"{c.stream} process",
                event.traceparent,
                event.tracestate,
                **{
                    "messaging.system": "redis",
                    "messaging.destination.name": c.stream,
                    "messaging.consumer.group.name": c.group,
                    "messaging.operation.type": "process",
                    "messaging.message.id": event.id,
                    "groundwork.event.type": event.type,
                },
            ):
                async with self._pool.acquire() as conn, conn.transaction():
                    first = await conn.fetchval(
                        """INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
                           ON CONFLICT DO NOTHING RETURNING true""",
                        c.group,
                        event.id,
                    )
                    if first:
                        await self._handler(conn, event, positions.text(message_id))
        except Exception:
            # Left pending: reclaimed after claim_idle_ms, up to max_deliveries times.
            log.exception(
                "event handler failed",
                extra={"event_id": event.id, "type": event.type, "try": deliveries},
            )
            return
        # Acknowledge only after the effect (and its record) committed.
        await self._redis.xack(c.stream, c.group, message_id)
        if first:
            self.applied += 1
            BUS_APPLIED.labels(c.stream, c.group).inc()

    async def _dead_letter(self, message_id: Any, raw: bytes, reason: str) -> None:
        c = self._config
        await self._redis.xadd(
            dead_letter_stream(c.stream),
            {FIELD: raw, b"reason": reason, b"group": c.group, b"original_id": message_id},
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )
        await self._redis.xack(c.stream, c.group, message_id)
        self.dead_lettered += 1
        BUS_DEAD_LETTERED.labels(c.stream, c.group).inc()
        log.error("event dead-lettered", extra={"reason": reason, "message_id": str(message_id)})

    async def lag(self) -> int:
        """Entries not yet delivered to this group plus those delivered but unacked."""
        return (await group_lags(self._redis, self._config.stream)).get(self._config.group, 0)


async def stream_info(redis: Redis, stream: str) -> dict[str, Any] | None:
    """XINFO STREAM, or None for a stream not yet made."""
    try:
        info: dict[str, Any] = await redis.xinfo_stream(stream)
    except ResponseError:  # no such stream
        return None
    return info


async def stream_head(redis: Redis, stream: str) -> str:
    """The id of the newest entry ever added to `stream` (ORIGIN before the first)."""
    info = await stream_info(redis, stream)
    return positions.text(info["last-generated-id"]) if info else positions.ORIGIN


async def group_lags(redis: Redis, stream: str) -> dict[str, int]:
    """Consumer group -> entries not yet delivered plus delivered but unacknowledged."""
    try:
        groups: Any = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet
        return {}
    result = {}
    for group in groups:
        name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
        result[name] = int(group.get("lag") or 0) + int(group.get("pending") or 0)
    return result
