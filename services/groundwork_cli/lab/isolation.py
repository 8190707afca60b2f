"""Isolation and double booking: four ways to hold a seat, raced by concurrent
buyers on Postgres.

- naive: read the seat's status, and if it is available, write "held" (READ
  COMMITTED, the default): two buyers who both read "available" both win;
- conditional: one `UPDATE ... WHERE status = 'available'` (what booking does):
  the second writer re-checks the row after the first commits and matches nothing;
- for update: read with `SELECT ... FOR UPDATE`, then write: the second reader
  waits for the first's commit and then reads "held";
- serializable: the naive code under SERIALIZABLE, retried on a serialization
  failure (40001): Postgres refuses the second commit, the retry reads "held"."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from groundwork_cli.lab import scratch
from groundwork_cli.lab.outcome import Outcome, Table

# A buyer's think time between reading and writing (the application's own logic):
# the window in which another buyer's read sees the same "available".
THINK_SECONDS = 0.002

Hold = Callable[[asyncpg.Connection, int, int], Awaitable[tuple[bool, int]]]


async def _naive(conn: asyncpg.Connection, seat: int, buyer: int) -> tuple[bool, int]:
    async with conn.transaction():
        status = await conn.fetchval("SELECT status FROM seats WHERE seat = $1", seat)
        await asyncio.sleep(THINK_SECONDS)
        if status != "available":
            return False, 0
        await conn.execute(
            "UPDATE seats SET status = 'held', holder = $2 WHERE seat = $1", seat, buyer
        )
        return True, 0


async def _conditional(conn: asyncpg.Connection, seat: int, buyer: int) -> tuple[bool, int]:
    await asyncio.sleep(THINK_SECONDS)
    won = await conn.fetchval(
        "UPDATE seats SET status = 'held', holder = $2 WHERE seat = $1 AND status = 'available'"
        " RETURNING seat",
        seat,
        buyer,
    )
    return won is not None, 0


async def _for_update(conn: asyncpg.Connection, seat: int, buyer: int) -> tuple[bool, int]:
    async with conn.transaction():
        status = await conn.fetchval("SELECT status FROM seats WHERE seat = $1 FOR UPDATE", seat)
        await asyncio.sleep(THINK_SECONDS)
        if status != "available":
            return False, 0
        await conn.execute(
            "UPDATE seats SET status = 'held', holder = $2 WHERE seat = $1", seat, buyer
        )
        return True, 0


async def _serializable(conn: asyncpg.Connection, seat: int, buyer: int) -> tuple[bool, int]:
    retries = 0
    while True:
        try:
            async with conn.transaction(isolation="serializable"):
                status = await conn.fetchval("SELECT status FROM seats WHERE seat = $1", seat)
                await asyncio.sleep(THINK_SECONDS)
                if status != "available":
                    return False, retries
                await conn.execute(
                    "UPDATE seats SET status = 'held', holder = $2 WHERE seat = $1", seat, buyer
                )
                return True, retries
        except asyncpg.SerializationError:
            retries += 1


VARIANTS: dict[str, Hold] = {
    "naive (READ COMMITTED)": _naive,
    "conditional UPDATE": _conditional,
    "SELECT ... FOR UPDATE": _for_update,
    "SERIALIZABLE + retry": _serializable,
}


async def _race(url: str, hold: Hold, trials: int, buyers: int) -> dict[str, Any]:
    connections = [await asyncpg.connect(url) for _ in range(buyers)]
    try:
        await connections[0].execute("TRUNCATE seats")
        await connections[0].execute(
            "INSERT INTO seats SELECT s, 'available', NULL FROM generate_series(1, $1) s", trials
        )
        latencies: list[float] = []
        retries = 0

        async def buy(conn: asyncpg.Connection, seat: int, buyer: int) -> bool:
            nonlocal retries
            started = time.perf_counter()
            won, tried = await hold(conn, seat, buyer)
            latencies.append((time.perf_counter() - started) * 1000)
            retries += tried
            return won

        double_sold = 0
        started = time.perf_counter()
        for seat in range(1, trials + 1):
            wins = await asyncio.gather(*(buy(c, seat, b) for b, c in enumerate(connections)))
            double_sold += sum(wins) > 1
        elapsed = time.perf_counter() - started
        return {
            "trials": trials,
            "buyers": buyers,
            "double_sold": double_sold,
            "retries": retries,
            "p50_ms": statistics.median(latencies),
            "p99_ms": statistics.quantiles(latencies, n=100)[98],
            "trials_per_second": trials / elapsed,
        }
    finally:
        for conn in connections:
            await conn.close()


async def _run(server_url: str, trials: int, buyers: int) -> dict[str, dict[str, Any]]:
    async with scratch.database(server_url, "isolation") as url:
        setup = await asyncpg.connect(url)
        try:
            await setup.execute(
                "CREATE TABLE seats"
                " (seat integer PRIMARY KEY, status text NOT NULL, holder integer)"
            )
        finally:
            await setup.close()
        return {name: await _race(url, hold, trials, buyers) for name, hold in VARIANTS.items()}


def run(server_url: str, quick: bool) -> Outcome:
    trials, buyers = (30, 4) if quick else (300, 8)
    results = asyncio.run(_run(server_url, trials, buyers))
    table = Table(
        ["variant", "seats sold twice", "of trials", "retries", "p50 ms", "p99 ms", "trials/s"]
    )
    for name, r in results.items():
        table.rows.append(
            [
                name,
                r["double_sold"],
                r["trials"],
                r["retries"],
                r["p50_ms"],
                r["p99_ms"],
                r["trials_per_second"],
            ]
        )

    def plot(axes: Any) -> None:
        names = list(results)
        axes.bar(
            names,
            [results[n]["double_sold"] for n in names],
            color=["#b42318", "#18794e", "#18794e", "#18794e"],
        )
        axes.set_ylabel(f"seats sold twice (of {trials}, {buyers} buyers each)")
        twin = axes.twinx()
        twin.plot(names, [results[n]["p99_ms"] for n in names], "o-", color="#2451c8")
        twin.set_ylabel("p99 ms per hold")
        axes.tick_params(axis="x", labelsize=8)

    naive = results["naive (READ COMMITTED)"]
    return Outcome(
        name="isolation",
        title="Isolation and double booking",
        table=table,
        figures=results,
        explanation=(
            f"{buyers} buyers race for each of {trials} seats, each thinking "
            f"{THINK_SECONDS * 1000:.0f} ms between reading and writing. The naive hold sold "
            f"{naive['double_sold']} of {trials} seats more than once: under READ COMMITTED "
            "both transactions read 'available' before either writes, and the second UPDATE "
            "overwrites the first (a lost update). A conditional UPDATE makes the check and "
            "the write one statement: the second writer waits for the first's row lock, "
            "re-evaluates the WHERE on the committed row and matches nothing. SELECT ... FOR "
            "UPDATE takes the lock at the read, so later readers queue behind it (the p99 "
            "grows with the buyers). SERIALIZABLE lets the naive code stand but makes "
            "Postgres refuse all but one commit (40001): correct only with a retry loop, "
            "and each retry is a round of work thrown away. Booking uses the conditional UPDATE."
        ),
        plot=plot,
    )
