"""The outbox relay and the Redis Streams consumer against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import asyncpg
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from redis.asyncio import Redis

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_cli.runtime import probes
from groundwork_cli.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from groundwork_shared.bus import Consumer, ConsumerConfig, dead_letter_stream, publish
from groundwork_shared.database import database_url, ensure_database
from groundwork_shared.events import envelope
from groundwork_shared.migrations import migrate
from groundwork_shared.outbox import Relay, enqueue
from tests.conftest import settles


@pytest.fixture
async def db(fresh_database: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    (tmp_path / "0001_bus.sql").write_text(
        "--! include outbox.sql\n--! include inbox.sql\n"
        "CREATE TABLE effects (event_id text, value text);\n"
    )
    await migrate(fresh_database, tmp_path)
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=8)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server)
    yield client
    await client.aclose()


def _event(value: str, aggregate: str = "a-1") -> Envelope:
    return envelope("test.happened", aggregate, StringValue(value=value))


async def _record(conn: asyncpg.Connection, event: Envelope, position: str = "") -> None:
    value = StringValue()
    event.payload.Unpack(value)
    await conn.execute("INSERT INTO effects VALUES ($1, $2)", event.id, value.value)


def _stream() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def test_outbox_rows_exist_only_with_their_transaction(
    db: asyncpg.Pool, redis: Redis
) -> None:
    stream = _stream()
    async with db.acquire() as conn:
        async with conn.transaction():
            await enqueue(conn, stream, _event("kept"))
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await enqueue(conn, stream, _event("rolled back"))
                raise RuntimeError("the state change failed")
    assert await Relay(db, redis).run_once() == 1
    entries: Any = await redis.xrange(stream)
    assert len(entries) == 1
    assert await Relay(db, redis).run_once() == 0  # nothing published twice


async def test_relay_keeps_order_and_consumer_applies_each_event_once(
    db: asyncpg.Pool, redis: Redis
) -> None:
    stream = _stream()
    events = [_event(f"v{n}", aggregate="seat-1") for n in range(20)]
    async with db.acquire() as conn:
        for event in events:
            await enqueue(conn, stream, event)
    await Relay(db, redis, batch=7).run_once()
    await Relay(db, redis, batch=7).run_once()
    await Relay(db, redis, batch=7).run_once()
    await publish(redis, stream, events[3])  # a duplicate, as after a relay crash
    consumer = Consumer(redis, db, ConsumerConfig(stream, "catalog", "c-1", block_ms=100), _record)
    await consumer.ensure_group()
    while await consumer.poll():
        pass
    rows = await db.fetch("SELECT value FROM effects ORDER BY ctid")
    assert [r["value"] for r in rows] == [f"v{n}" for n in range(20)]
    assert consumer.applied == 20
    assert await consumer.lag() == 0


async def test_stuck_messages_are_reclaimed_and_poison_goes_to_dead_letters(
    db: asyncpg.Pool, redis: Redis
) -> None:
    stream = _stream()
    config = ConsumerConfig(
        stream, "ticketing", "dies", claim_idle_ms=50, block_ms=50, max_deliveries=3
    )
    dead = Consumer(redis, db, config, _record)
    await dead.ensure_group()
    await publish(redis, stream, _event("orphaned"))
    await redis.xreadgroup("ticketing", "dies", {stream: ">"}, count=10)  # read, never acked
    assert await dead.lag() == 1

    failures = 0

    async def flaky(conn: asyncpg.Connection, event: Envelope, position: str) -> None:
        nonlocal failures
        value = StringValue()
        event.payload.Unpack(value)
        if value.value == "poison":
            failures += 1
            raise ValueError("cannot handle this one")
        await _record(conn, event)

    survivor = Consumer(
        redis,
        db,
        ConsumerConfig(
            stream, "ticketing", "lives", claim_idle_ms=50, block_ms=50, max_deliveries=3
        ),
        flaky,
    )

    async def taken_over() -> None:  # once the message has idled past claim_idle_ms
        assert await survivor.reclaim() == 1  # taken over from the dead consumer

    await settles(taken_over, timeout=10, interval=0.02)
    await publish(redis, stream, _event("poison"))
    await redis.xadd(stream, {b"e": b"\xff not an envelope"})
    await survivor.poll()

    async def given_up() -> None:  # each reclaim is one more delivery of the poison
        await survivor.reclaim()
        assert await redis.xlen(dead_letter_stream(stream)) == 2

    await settles(given_up, timeout=10, interval=0.05)
    values = [r["value"] for r in await db.fetch("SELECT value FROM effects")]
    assert values == ["orphaned"]  # applied once, by the survivor
    assert failures == 3  # then given up on
    letters: Any = await redis.xrange(dead_letter_stream(stream))
    reasons = sorted(fields[b"reason"].decode() for _, fields in letters)
    assert reasons == ["failed 3 deliveries", "undecodable envelope"]
    assert await survivor.lag() == 0


def _relay_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "outbox relay failed; retrying" for r in caplog.records)


async def _relay_failed_since(caplog: pytest.LogCaptureFixture, seen: int) -> None:
    assert _relay_failures(caplog) > seen, "the relay has not tried (and failed) yet"


async def test_relay_survives_a_redis_restart(
    db: asyncpg.Pool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", "127.78.2.3", 6379)
    process = await asyncio.create_subprocess_exec(*server.command(), stdout=DEVNULL)
    await probes.wait_until(probes.redis(server.url()), 20, "redis")
    client = Redis.from_url(server.url(), socket_connect_timeout=0.5, socket_timeout=1)
    relay = Relay(db, client)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, idle=0.05))
    stream = _stream()
    try:
        async with db.acquire() as conn:
            await enqueue(conn, stream, _event("before"))
        await probes.wait_until(lambda: _length(client, stream, 1), 10, "before published")
        process.terminate()
        await process.wait()
        seen = _relay_failures(caplog)
        async with db.acquire() as conn:
            await enqueue(conn, stream, _event("while down"))
        await settles(lambda: _relay_failed_since(caplog, seen), timeout=15)
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
        process = await asyncio.create_subprocess_exec(*server.command(), stdout=DEVNULL)
        await probes.wait_until(probes.redis(server.url()), 20, "redis")

        async def published() -> None:
            left = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            assert left == 0

        await probes.wait_until(published, 15, "outbox drained")
        entries: Any = await client.xrange(stream)
        values = []
        for _, fields in entries:
            value = StringValue()
            Envelope.FromString(fields[b"e"]).payload.Unpack(value)
            values.append(value.value)
        assert values == ["before", "while down"]  # nothing lost, order kept
    finally:
        stop.set()
        await task
        await client.aclose()
        process.terminate()
        await process.wait()


async def test_relay_survives_a_postgres_restart_and_its_own(
    redis: Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Postgres of its own, stopped and started under a running relay; then the
    relay itself is cancelled mid-run and a new one finishes the job."""
    server = EmbeddedPostgres(tmp_path / "pg" / "data", "127.78.2.4", 5432)
    server.init()
    start = [*server.command()]

    async def launch() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *start, stdout=DEVNULL, stderr=DEVNULL, **server.run_as()
        )
        await probes.wait_until(probes.postgres(server.url()), 30, "postgres")
        return proc

    process = await launch()
    await ensure_database(server.url(), "bus")
    url = database_url(server.url(), "bus")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_bus.sql").write_text("--! include outbox.sql\n")
    await migrate(url, tmp_path / "m")
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    stream = _stream()
    stop = asyncio.Event()
    relay = asyncio.create_task(Relay(pool, redis).run(stop, idle=0.05, max_backoff=0.5))
    try:
        async with pool.acquire() as conn:
            await enqueue(conn, stream, _event("first"))
        await probes.wait_until(lambda: _length(redis, stream, 1), 10, "first published")
        # Marked too: a relay stopped between XADD and marking publishes it again
        # (at least once; the kill matrix's after_xadd), which this test is not about.
        await probes.wait_until(lambda: _marked(pool, 1), 10, "first marked")
        seen = _relay_failures(caplog)
        process.send_signal(signal.SIGINT)  # fast shutdown: every connection dropped
        await process.wait()
        # Started again only once the relay has met the dead server.
        await settles(lambda: _relay_failed_since(caplog, seen), timeout=15)
        process = await launch()
        async with pool.acquire() as conn:  # the pool reconnects
            await enqueue(conn, stream, _event("after restart"))
        await probes.wait_until(lambda: _length(redis, stream, 2), 15, "second published")
        await probes.wait_until(lambda: _marked(pool, 2), 15, "second marked")  # as above

        relay.cancel()  # the relay dies...
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        async with pool.acquire() as conn:
            for n in range(5):
                await enqueue(conn, stream, _event(f"queued {n}"))
        relay = asyncio.create_task(Relay(pool, redis).run(stop, idle=0.05))  # ...and returns
        await probes.wait_until(lambda: _length(redis, stream, 7), 10, "backlog published")
        entries: Any = await redis.xrange(stream)
        values = []
        for _, fields in entries:
            value = StringValue()
            Envelope.FromString(fields[b"e"]).payload.Unpack(value)
            values.append(value.value)
        assert values == ["first", "after restart", *(f"queued {n}" for n in range(5))]
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await pool.close()
        process.send_signal(signal.SIGINT)
        await process.wait()


async def _length(redis: Redis, stream: str, expected: int) -> None:
    assert await redis.xlen(stream) == expected


async def _marked(pool: asyncpg.Pool, expected: int) -> None:
    assert (
        await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
        == expected
    )
