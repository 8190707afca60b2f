"""The bus under SIGKILL: 10,000 events through the real outbox relay and two real
consumers (processes of their own, tests/integration/bus_worker.py), which are
killed at least 20 times between them: relays between XADD and marking the rows,
consumers between the effect's commit and its XACK and inside the effect's
transaction, and any process from outside at a random moment. A poison event
goes to the dead-letter stream after its deliveries while the rest keep flowing.

Nothing may be lost and no effect may happen twice; redeliveries must have
happened (or the test proved nothing). Bounded: the test stops itself when the
work is done, or fails after its deadline."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from redis.asyncio import Redis

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.bus import dead_letter_stream
from groundwork_shared.events import envelope
from groundwork_shared.migrations import migrate
from groundwork_shared.outbox import enqueue
from tests.integration.bus_worker import POISON

EVENTS = 10_000
KILLS = 20
DEADLINE_SECONDS = 300
CONSUMERS = 2  # firsts below names each slot's first death


@pytest.fixture
async def db(fresh_database: str, tmp_path: Path) -> AsyncIterator[str]:
    (tmp_path / "0001_bus.sql").write_text(
        "--! include outbox.sql\n--! include inbox.sql\n"
        "CREATE TABLE effects (event_id text NOT NULL, value text NOT NULL);\n"
        "CREATE TABLE attempts (event_id text NOT NULL);\n"
    )
    await migrate(fresh_database, tmp_path)
    yield fresh_database


async def _enqueue_all(db: str, stream: str) -> set[str]:
    conn = await asyncpg.connect(db)
    ids = set()
    try:
        for start in range(0, EVENTS, 500):
            async with conn.transaction():
                for n in range(start, min(start + 500, EVENTS)):
                    event = envelope("test.happened", f"a-{n % 97}", StringValue(value=str(n)))
                    ids.add(event.id)
                    await enqueue(conn, stream, event)
                    if n == EVENTS // 2:
                        await enqueue(
                            conn, stream, envelope("test.happened", "p", StringValue(value=POISON))
                        )
    finally:
        await conn.close()
    return ids


def _plan(role: str, rng: random.Random, first: str = "") -> tuple[str, int]:
    """Where a new process dies: `first` for the first of its slot (so every point
    is hit at least once), then a random point, or none (killed from outside)."""
    points = ["after_xadd", "none"] if role == "relay" else ["before_ack", "in_handler", "none"]
    point = first or rng.choice(points)
    if point == "none":
        return point, 0
    return point, rng.randint(1, 8) if role == "relay" else rng.randint(50, 600)


async def test_ten_thousand_events_through_twenty_kills(
    db: str, redis_server: str, tmp_path: Path
) -> None:
    stream = f"matrix-{uuid.uuid4().hex[:8]}"
    expected = await _enqueue_all(db, stream)
    rng = random.Random(20261202)
    redis = Redis.from_url(redis_server)
    conn = await asyncpg.connect(db)
    kills: dict[str, int] = {}
    slots: dict[str, tuple[asyncio.subprocess.Process, str]] = {}
    exits: dict[str, asyncio.Task[int]] = {}  # each slot's process, as it ends
    started = time.monotonic()
    # The workers' own lines (the poison's failures, takeovers), for a post-mortem.
    log = (tmp_path / "workers.log").open("ab")

    firsts = {"relay": "after_xadd", "consumer-0": "before_ack", "consumer-1": "in_handler"}

    async def start(slot: str) -> None:
        role = "relay" if slot == "relay" else "consumer"
        point, after = _plan(role, rng, firsts.pop(slot, ""))
        args = [role, db, redis_server, stream, point, str(after)]
        if role == "consumer":
            args.append(f"{slot}-{uuid.uuid4().hex[:6]}")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.bus_worker", *args, stdout=log, stderr=log
        )
        slots[slot] = (process, point)
        exits[slot] = asyncio.create_task(process.wait())

    async def done() -> bool:
        applied = await conn.fetchval("SELECT count(DISTINCT event_id) FROM effects")
        unpublished = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        letters = await redis.xlen(dead_letter_stream(stream))
        return applied == EVENTS and unpublished == 0 and letters >= 1

    try:
        for slot in ["relay", *(f"consumer-{i}" for i in range(CONSUMERS))]:
            await start(slot)
        next_outside_kill = time.monotonic() + rng.uniform(0.5, 2)
        while True:
            assert time.monotonic() - started < DEADLINE_SECONDS, (kills, "did not finish")
            # Until a worker dies or the next kill from outside is due; once enough
            # kills were seen, until the next look at whether the work is done.
            enough = sum(kills.values()) >= KILLS
            wait = 0.5 if enough else max(0.0, next_outside_kill - time.monotonic())
            await asyncio.wait(exits.values(), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for slot, ended in list(exits.items()):
                if ended.done():
                    assert ended.result() == -signal.SIGKILL, (slot, ended.result())
                    point = slots[slot][1]
                    kills[point] = kills.get(point, 0) + 1
                    await start(slot)
            if sum(kills.values()) < KILLS and time.monotonic() >= next_outside_kill:
                slot = rng.choice(list(slots))
                process, point = slots[slot]
                # A process bound for a point no death has hit yet is spared: its
                # death from outside would be counted "outside" and the point missed.
                spared = point != "none" and point not in kills
                if process.returncode is None and not spared:
                    slots[slot] = (process, "outside")  # counted when its death is seen
                    process.kill()
                next_outside_kill = time.monotonic() + rng.uniform(0.5, 2)
            if sum(kills.values()) >= KILLS and await done():
                break
    finally:
        for process, _ in slots.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        log.close()

    rows = await conn.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
    applied = {r["event_id"]: r["n"] for r in rows}
    # Attempts at events that were applied (the poison's are not among them).
    attempts = await conn.fetchval(
        "SELECT count(*) FROM attempts WHERE event_id IN (SELECT event_id FROM effects)"
    )
    published = await redis.xlen(stream)
    letters: Any = await redis.xrange(dead_letter_stream(stream))
    await conn.close()
    await redis.aclose()
    print(f"kills {kills}; attempts {attempts}; stream entries {published}")

    assert set(applied) == expected  # nothing lost (and nothing invented)
    assert max(applied.values()) == 1  # no effect twice
    assert sum(kills.values()) >= KILLS
    assert kills.get("before_ack", 0) >= 1 and kills.get("after_xadd", 0) >= 1, kills
    assert attempts > EVENTS  # redelivered: some events were tried again
    assert published > EVENTS + 1  # the relay republished what it had not marked
    # The poison event alone (each copy the relay sent), after its deliveries; the
    # group kept flowing past it.
    assert letters
    for _, fields in letters:
        value = StringValue()
        Envelope.FromString(fields[b"e"]).payload.Unpack(value)
        # At least max_deliveries (8): a delivery cut short by a kill counts too.
        failed, deliveries, _ = fields[b"reason"].split(b" ", 2)
        assert value.value == POISON, (value.value, fields[b"reason"])
        assert failed == b"failed" and int(deliveries) >= 8, fields[b"reason"]
