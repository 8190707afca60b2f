"""Delivery guarantees: a Redis Streams consumer group whose consumer is SIGKILLed
again and again while it works, in three disciplines —

- at most once: acknowledge, then apply the effect (a crash in between loses it);
- at least once: apply, then acknowledge (a crash in between applies it again);
- effectively once: apply and record the message id in one transaction, then
  acknowledge; a redelivered message finds its id and is skipped (what the
  services' consumers do);

counting lost and duplicated effects against what was produced. Then push against
polling: the delay from XADD to a consumer's hands with XREAD BLOCK, and with a
poll every 100 ms."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
from redis.asyncio import Redis

from groundwork_cli.lab import scratch
from groundwork_cli.lab.outcome import Outcome, Table

MODES = ("at most once", "at least once", "effectively once")
# Work between the effect and the acknowledgement (or before the effect): the
# window a crash falls into.
WORK_SECONDS = 0.002


def _entries(reply: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """The messages of an XREAD/XREADGROUP reply on one stream, ids as text."""
    if not reply:
        return []
    return [(message_id.decode(), dict(fields)) for message_id, fields in reply[0][1]]


async def consume(mode: str, stream: str, database_url: str, redis_url: str) -> None:
    """The consumer process: read (its own pending first, then new), apply, ack."""
    redis = Redis.from_url(redis_url)
    conn = await asyncpg.connect(database_url)
    group, me = "lab", "consumer"
    start = "0"  # after a crash: what was delivered to this consumer and never acked
    while True:
        reply = await redis.xreadgroup(group, me, {stream: start}, count=10, block=1000)
        entries = _entries(reply)
        if start == "0" and not entries:
            start = ">"
            continue
        for ident, _ in entries:
            if mode == "at most once":
                await redis.xack(stream, group, ident)
                await asyncio.sleep(WORK_SECONDS)
                await conn.execute("INSERT INTO effects (message) VALUES ($1)", ident)
            elif mode == "at least once":
                await conn.execute("INSERT INTO effects (message) VALUES ($1)", ident)
                await asyncio.sleep(WORK_SECONDS)
                await redis.xack(stream, group, ident)
            else:
                async with conn.transaction():
                    seen = await conn.fetchval(
                        "INSERT INTO processed (message) VALUES ($1)"
                        " ON CONFLICT DO NOTHING RETURNING message",
                        ident,
                    )
                    if seen is not None:
                        await conn.execute("INSERT INTO effects (message) VALUES ($1)", ident)
                await asyncio.sleep(WORK_SECONDS)
                await redis.xack(stream, group, ident)


async def _applied_more(conn: asyncpg.Connection, timeout: float = 30) -> None:
    """Return once the effects table has grown (the consumer is at work)."""
    before = await conn.fetchval("SELECT count(*) FROM effects")
    for _ in range(int(timeout / 0.01)):
        if await conn.fetchval("SELECT count(*) FROM effects") != before:
            return
        await asyncio.sleep(0.01)


async def _run_mode(
    mode: str, database_url: str, redis_url: str, messages: int, kills: int
) -> dict[str, Any]:
    redis = Redis.from_url(redis_url)
    conn = await asyncpg.connect(database_url)
    stream = f"lab:delivery:{uuid.uuid4()}"
    try:
        await conn.execute("TRUNCATE effects, processed")
        await redis.xgroup_create(stream, "lab", id="0", mkstream=True)
        for _ in range(messages):
            await redis.xadd(stream, {"n": b"1"})
        command = [sys.executable, "-m", "groundwork_cli.lab.delivery"]
        arguments = [mode, stream, database_url, redis_url]
        killed = 0
        while True:
            consumer = await asyncio.create_subprocess_exec(
                *command, *arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if killed < kills:
                # Killed while it works: once it has applied something since it started.
                await _applied_more(conn)
                await asyncio.sleep(random.uniform(0.0, 0.05))
                os.kill(consumer.pid, signal.SIGKILL)
                await consumer.wait()
                killed += 1
                continue
            # No more crashes: let it finish what is left (nothing pending, nothing new).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                pending = await redis.xpending(stream, "lab")
                info = await redis.xinfo_groups(stream)
                if pending["pending"] == 0 and info[0]["lag"] == 0:
                    break
                await asyncio.sleep(0.1)
            consumer.terminate()
            await consumer.wait()
            break
        effects = await conn.fetchval("SELECT count(*) FROM effects")
        distinct = await conn.fetchval("SELECT count(DISTINCT message) FROM effects")
        return {
            "produced": messages,
            "kills": killed,
            "effects": effects,
            "lost": messages - distinct,
            "duplicated": effects - distinct,
        }
    finally:
        await redis.delete(stream)
        await redis.aclose()
        await conn.close()


async def _receive(redis: Redis, stream: str, block: bool, samples: int) -> list[float]:
    """Delays from each message's XADD (its timestamp) to its receipt here."""
    delays: list[float] = []
    last = "0-0"  # the stream is new: everything in it was sent for this run
    while len(delays) < samples:
        if block:
            entries = _entries(await redis.xread({stream: last}, block=1000))
        else:
            entries = _entries(await redis.xread({stream: last}))
            if not entries:
                await asyncio.sleep(0.1)
                continue
        for message_id, fields in entries:
            delays.append((time.time() - float(fields[b"t"])) * 1000)
            last = message_id
    return delays


async def _latency(redis_url: str, samples: int) -> dict[str, dict[str, float]]:
    """XADD to receipt, by XREAD BLOCK (push) and by XREAD every 100 ms (polling)."""
    redis = Redis.from_url(redis_url)
    streams = [f"lab:latency:{uuid.uuid4()}" for _ in range(2)]
    results: dict[str, dict[str, float]] = {}
    try:
        for name, block, stream in (
            ("push: XREAD BLOCK", True, streams[0]),
            ("polling every 100 ms", False, streams[1]),
        ):
            receiver = asyncio.create_task(_receive(redis, stream, block, samples))
            for _ in range(samples):
                await asyncio.sleep(random.uniform(0.01, 0.05))
                await redis.xadd(stream, {"t": str(time.time())})
            delays = await asyncio.wait_for(receiver, 30)
            results[name] = {"p50_ms": statistics.median(delays), "max_ms": max(delays)}
    finally:
        await redis.delete(*streams)
        await redis.aclose()
    return results


async def _run(server_url: str, redis_url: str, messages: int, kills: int) -> dict[str, Any]:
    async with scratch.database(server_url, "delivery") as url:
        setup = await asyncpg.connect(url)
        try:
            await setup.execute("CREATE TABLE effects (message text NOT NULL)")
            await setup.execute("CREATE TABLE processed (message text PRIMARY KEY)")
        finally:
            await setup.close()
        modes = {mode: await _run_mode(mode, url, redis_url, messages, kills) for mode in MODES}
    return {"modes": modes, "latency": await _latency(redis_url, 20 if messages < 1000 else 100)}


def run(server_url: str, redis_url: str, quick: bool) -> Outcome:
    messages, kills = (300, 5) if quick else (3000, 25)
    results = asyncio.run(_run(server_url, redis_url, messages, kills))
    table = Table(["consumer", "produced", "SIGKILLs", "effects", "lost", "duplicated"])
    for mode, r in results["modes"].items():
        table.rows.append(
            [mode, r["produced"], r["kills"], r["effects"], r["lost"], r["duplicated"]]
        )
    for name, r in results["latency"].items():
        table.rows.append(
            [
                f"delivery delay, {name}",
                "",
                "",
                f"p50 {r['p50_ms']:.2f} ms",
                "",
                f"max {r['max_ms']:.1f} ms",
            ]
        )

    def plot(axes: Any) -> None:
        modes = list(results["modes"])
        width = 0.35
        axes.bar(
            [i - width / 2 for i in range(3)],
            [results["modes"][m]["lost"] for m in modes],
            width,
            label="lost",
            color="#b42318",
        )
        axes.bar(
            [i + width / 2 for i in range(3)],
            [results["modes"][m]["duplicated"] for m in modes],
            width,
            label="duplicated",
            color="#e3a008",
        )
        axes.set_xticks(range(3), modes)
        axes.set_ylabel(f"effects, of {messages} messages, {kills} crashes")
        axes.legend()

    m = results["modes"]
    return Outcome(
        name="delivery",
        title="Delivery guarantees under a crashing consumer",
        table=table,
        figures=results,
        explanation=(
            f"{messages} messages through a consumer group whose consumer is SIGKILLed {kills} "
            "times while it works, restarted each time, and reads its own unacknowledged "
            "messages first. Acknowledging before the effect lost "
            f"{m['at most once']['lost']} effects and duplicated none; acknowledging after it "
            f"lost none and applied {m['at least once']['duplicated']} twice (each crash between "
            "the effect and the XACK redelivers a message already applied); recording the "
            "message id in the effect's own transaction lost "
            f"{m['effectively once']['lost']} and duplicated "
            f"{m['effectively once']['duplicated']}: "
            "delivery is still at least once, the effect happens once. Push (XREAD BLOCK) "
            "hands a message over within a millisecond; polling adds half its interval on average."
        ),
        plot=plot,
    )


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:5]))
