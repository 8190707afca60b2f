"""A bus process for the kill matrix (test_bus_kill_matrix.py): the real outbox
Relay or the real Consumer, which SIGKILLs itself at a chosen point of its work.

    python -m tests.integration.bus_worker relay DB REDIS STREAM CRASH AFTER
    python -m tests.integration.bus_worker consumer DB REDIS STREAM CRASH AFTER NAME

CRASH is where it dies, the AFTER-th time it gets there:
  after_xadd     relay: its batch is in the stream, the rows not yet marked
  before_ack     consumer: the effect has committed, the XACK not yet sent
  in_handler     consumer: inside the effect's transaction (rolled back)
  none           runs until the test kills it from outside
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import asyncpg
from google.protobuf.wrappers_pb2 import StringValue
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.bus import Consumer, ConsumerConfig
from groundwork_shared.outbox import Relay

POISON = "poison"


class Fuse:
    """Kills this process the `after`-th time `hit` is called at `point`."""

    def __init__(self, point: str, after: int) -> None:
        self.point, self.left = point, after

    def hit(self, point: str) -> None:
        if point == self.point:
            self.left -= 1
            if self.left <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


async def relay(db: str, redis_url: str, fuse: Fuse) -> None:
    execute = Pipeline.execute

    async def xadd_then_maybe_die(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        result = await execute(self, *args, **kwargs)
        fuse.hit("after_xadd")
        return result

    Pipeline.execute = xadd_then_maybe_die  # type: ignore[method-assign]
    pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
    redis = Redis.from_url(redis_url)
    await Relay(pool, redis, batch=100).run(asyncio.Event(), idle=0.02, max_backoff=0.2)


async def consumer(db: str, redis_url: str, stream: str, fuse: Fuse, name: str) -> None:
    pool = await asyncpg.create_pool(db, min_size=1, max_size=3)
    redis = Redis.from_url(redis_url)

    async def apply(conn: asyncpg.Connection, event: Envelope, position: str) -> None:
        # Every attempt, outside the effect's transaction: redeliveries show here.
        await pool.execute("INSERT INTO attempts (event_id) VALUES ($1)", event.id)
        value = StringValue()
        event.payload.Unpack(value)
        if value.value == POISON:
            raise ValueError("this event can never be handled")
        await conn.execute(
            "INSERT INTO effects (event_id, value) VALUES ($1, $2)", event.id, value.value
        )
        fuse.hit("in_handler")

    ack = redis.xack

    async def maybe_die_then_ack(*args: Any, **kwargs: Any) -> Any:
        fuse.hit("before_ack")
        return await ack(*args, **kwargs)

    redis.xack = maybe_die_then_ack  # type: ignore[method-assign]
    config = ConsumerConfig(
        stream,
        "matrix",
        name,
        max_deliveries=8,
        claim_idle_ms=300,
        block_ms=100,
        reclaim_every=0.2,
    )
    await Consumer(redis, pool, config, apply).run(asyncio.Event())


def main(argv: list[str]) -> None:
    role, db, redis_url, stream, point, after = argv[:6]
    fuse = Fuse(point, int(after))
    if role == "relay":
        asyncio.run(relay(db, redis_url, fuse))
    else:
        asyncio.run(consumer(db, redis_url, stream, fuse, argv[6]))


if __name__ == "__main__":
    main(sys.argv[1:])
