"""`groundwork bench sale`: a flash sale against this machine's limits, on the
running local mesh, every figure beside the ceiling it is measured against in
the same run (the machine is noisy; ratios travel, absolute numbers do not).

1. bytes on the wire: the whole seat map against the layout + availability;
2. availability reads/s through the edge against the same Envoy build answering
   a direct response of the same size (h2load, closed loop, HTTP/2);
3. holds/s through the edge against the same hold transaction run directly on
   booking's Postgres by an asyncpg loop, at the same concurrency;
4. concurrent WebSockets through the edge, with the edge's and realtime's
   memory per socket;
5. the sale: customers (prepared before it) arriving over the ramp onto one
   event behind an adaptive waiting room (Locust), then `groundwork check`.

Each part is bounded by count and time and stops by itself. The mesh must have
its per-client limits raised (the load comes from one address)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import psutil

from groundwork_cli import bench_envoys, h2load
from groundwork_cli.customers import mint
from groundwork_cli.load import local_admin_token
from groundwork_cli.mesh_bench import Meter, busiest
from groundwork_cli.runtime import supervisor
from groundwork_cli.runtime.plan import Plan, service_database_url
from groundwork_loadtest.runner import new_event

Say = Callable[[str], None]
PARTS = ("bytes", "reads", "holds", "websockets", "sale")


@dataclass(frozen=True)
class Sizes:
    customers: int = 5000
    ramp_seconds: float = 30
    # How long customers keep arriving and buying after the ramp (queue drains).
    sale_seconds: float = 120
    read_requests: int = 50_000
    hold_seconds: float = 10
    concurrency: int = 32
    websockets: int = 5000
    parts: tuple[str, ...] = PARTS


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# 1. bytes ---------------------------------------------------------------------


def wire_bytes(http: str, event_id: str) -> dict[str, dict[str, int]]:
    """Bytes of each read's body as sent, per accept-encoding."""
    result: dict[str, dict[str, int]] = {}
    with httpx.Client(base_url=http, timeout=30) as client:
        for name, path in (
            ("seat map (before)", "seats"),
            ("layout", "layout"),
            ("availability", "availability"),
        ):
            row = {}
            for encoding in ("identity", "gzip", "br"):
                with client.stream(
                    "GET", f"/v1/events/{event_id}/{path}", headers={"accept-encoding": encoding}
                ) as reply:
                    reply.raise_for_status()
                    raw = b"".join(reply.iter_raw())
                row[encoding] = len(raw)
                sent = reply.headers.get("content-encoding", "identity")
                if sent != encoding:
                    row[f"{encoding} (sent {sent})"] = row.pop(encoding)
            result[name] = row
    return result


# 2. reads against a direct response --------------------------------------------


def reads_against_direct_response(
    plan: Plan, http: str, event_id: str, requests: int, concurrency: int
) -> dict[str, Any]:
    path = f"/v1/events/{event_id}/availability"
    body = httpx.get(f"{http}{path}", headers={"accept-encoding": "identity"}).text
    address, port = plan.profile.edge_address(), 18090  # beside the edge's ports
    rounds = []
    with bench_envoys.running(bench_envoys.direct_config(address, port, body)):
        # Alternating, twice each: drift on a noisy machine hits both alike.
        for _ in range(2):
            rounds.append(
                tuple(
                    h2load.run(h2load.Load(url, requests, concurrency)).as_dict()
                    for url in (f"{http}{path}", f"http://{address}:{port}{path}")
                )
            )
    edge = max((r[0] for r in rounds), key=lambda f: f["per_second"])
    direct = max((r[1] for r in rounds), key=lambda f: f["per_second"])
    return {
        "body_bytes": len(body.encode()),
        "edge": edge,
        "direct_response": direct,
        "ratio": round(edge["per_second"] / direct["per_second"], 3),
    }


# 3. holds against the database's own loop ---------------------------------------


async def _edge_holds(
    http: str, event_id: str, tokens: list[str], seats: list[str], seconds: float
) -> dict[str, float]:
    queue = list(seats)
    done, failed = 0, 0
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    async def worker(token: str, session: aiohttp.ClientSession) -> None:
        nonlocal done, failed
        while queue and time.monotonic() < deadline:
            seat = queue.pop()
            body = {"event_id": event_id, "seat_ids": [seat], "idempotency_key": str(uuid.uuid4())}
            started = time.monotonic()
            async with session.post(f"{http}/v1/holds", json=body, headers=_bearer(token)) as reply:
                await reply.read()
                if reply.status == 200:
                    done += 1
                    latencies.append(time.monotonic() - started)
                else:
                    failed += 1

    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(t, session) for t in tokens))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "per_second": round(done / elapsed, 1),
        "holds": done,
        "failed": failed,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else 0,
    }


async def _database_holds(
    url: str, event_id: str, seats: list[str], concurrency: int, seconds: float
) -> dict[str, float]:
    from groundwork.booking.v1 import booking_pb2
    from groundwork_booking import domain
    from groundwork_booking.service import hold_transaction

    queue = list(seats)
    done = 0
    deadline = time.monotonic() + seconds
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    assert pool is not None

    async def worker(user: str) -> None:
        nonlocal done
        while queue and time.monotonic() < deadline:
            seat = queue.pop()
            request = booking_pb2.HoldSeatsRequest(
                event_id=event_id, seat_ids=[seat], idempotency_key=str(uuid.uuid4())
            )
            hold = domain.hold_request(event_id, [seat])
            async with pool.acquire() as conn:
                await hold_transaction(conn, user, hold, request, timedelta(minutes=5))
            done += 1

    started = time.monotonic()
    try:
        await asyncio.gather(*(worker(f"bench-{i}") for i in range(concurrency)))
    finally:
        await pool.close()
    elapsed = time.monotonic() - started
    return {"per_second": round(done / elapsed, 1), "holds": done}


def holds_against_database(
    plan: Plan, http: str, event_id: str, tokens: list[str], seconds: float
) -> dict[str, Any]:
    """The first half of the event's seats through the edge, the second half by
    the loop (booking's inventory of the event exists once the edge's first hold
    made it)."""
    seats = [s["seat_id"] for s in httpx.get(f"{http}/v1/events/{event_id}/seats").json()["seats"]]
    half = len(seats) // 2
    edge = asyncio.run(_edge_holds(http, event_id, tokens, seats[:half], seconds))
    url = service_database_url(plan, "booking")
    database = asyncio.run(_database_holds(url, event_id, seats[half:], len(tokens), seconds))
    return {
        "concurrency": len(tokens),
        "edge": edge,
        "database_loop": database,
        "ratio": round(edge["per_second"] / database["per_second"], 3),
    }


# 4. websockets ------------------------------------------------------------------


def _rss(plan: Plan, names: list[str]) -> int:
    rpc = supervisor.client(plan.layout)
    total = 0
    for name in names:
        pid = rpc.getProcessInfo(name)["pid"]
        if pid:
            process = psutil.Process(pid)
            total += process.memory_info().rss
    return total


def _client_addresses(count: int, per_client: int) -> list[str]:
    """Loopback source addresses for `count` sockets, `per_client` at most on
    each: the edge caps open WebSockets per client address, as it would for
    that many people."""
    needed = -(-count // per_client)
    return [f"127.70.{i // 250}.{i % 250 + 1}" for i in range(needed)]


async def _hold_websockets(
    url: str, count: int, per_client: int, settle: Callable[[], None]
) -> dict[str, Any]:
    """Open `count` sockets (200 handshakes at a time) from as many client
    addresses as the edge's cap needs, each read by its own task as a browser
    would (so the server's pings get their pongs), hold them all, measure, close."""
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []
    refused: dict[str, int] = {}
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0))
        for address in _client_addresses(count, per_client)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for session in sessions:
            await stack.enter_async_context(session)
        gate = asyncio.Semaphore(200)

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for _ in ws:  # answers pings; frames are not needed here
                pass

        async def one(session: aiohttp.ClientSession) -> None:
            async with gate:
                try:
                    ws = await session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5))
                    ready = await ws.receive(timeout=30)  # the Ready frame: subscribed
                    if ready.type != aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(str(ready))
                except (aiohttp.ClientError, TimeoutError, ConnectionError) as error:
                    reason = f"{type(error).__name__}: {str(error)[:80]}"
                    refused[reason] = refused.get(reason, 0) + 1
                    return
            sockets.append(ws)
            readers.append(asyncio.create_task(read(ws)))

        await asyncio.gather(*(one(sessions[i % len(sessions)]) for i in range(count)))
        await asyncio.to_thread(settle)
        open_now = sum(1 for ws in sockets if not ws.closed)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)
    # Refused: no handshake or no Ready; dropped: connected, but gone by the measurement.
    return {
        "asked": count,
        "connected": open_now,
        "refused": sum(refused.values()),
        "refused_because": refused,
        "dropped": len(sockets) - open_now,
    }


def websockets(plan: Plan, http: str, event_id: str, count: int) -> dict[str, Any]:
    realtime = [p.name for p in plan.services if p.name.startswith("realtime-")]
    before = {"edge": _rss(plan, ["edge"]), "realtime": _rss(plan, realtime)}
    during: dict[str, int] = {}

    def measure() -> None:
        time.sleep(2)  # let allocations settle before reading RSS
        during.update({"edge": _rss(plan, ["edge"]), "realtime": _rss(plan, realtime)})

    url = http.replace("http", "ws", 1) + f"/v1/live/events/{event_id}/queue"
    per_client = plan.mesh.edge.websockets_per_client
    counts = asyncio.run(_hold_websockets(url, count, per_client, measure))
    connected = max(counts["connected"], 1)
    return {
        **counts,
        "edge_bytes_per_socket": (during["edge"] - before["edge"]) // connected,
        "realtime_bytes_per_socket": (during["realtime"] - before["realtime"]) // connected,
    }


# 5. the sale --------------------------------------------------------------------


def sale(
    plan: Plan, http: str, admin: str, event_id: str, sizes: Sizes, out: Path
) -> dict[str, Any]:
    from groundwork_loadtest.runner import Databases, Run, execute

    customers = mint(plan, sizes.customers)
    meter = Meter.of_mesh(plan)
    before, generator_before, started = meter.snapshot(), _children_cpu(), time.monotonic()
    run = Run(
        scenario="flash-sale",
        host=http,
        out=out,
        event_id=event_id,
        flash_users=sizes.customers,
        flash_ramp=sizes.ramp_seconds,
        flash_hold=sizes.sale_seconds,
        databases=Databases(
            service_database_url(plan, "booking"), service_database_url(plan, "ticketing")
        ),
        tokens=customers.tokens,
        tokens_made={"seconds": round(customers.seconds, 2), "how": "accounts, tokens in bulk"},
        room={
            "total_active_users": 500,
            "new_users_per_minute": 6000,
            "mode": "ADMISSION_MODE_ADAPTIVE",
            "target_booking_p99_ms": 1000,
            "paused": False,
        },
        admin_token=admin,
    )
    document = execute(run)
    cores = (time.monotonic() - started) / 100  # CPU seconds -> percent of one core
    spent = busiest(before, meter.snapshot(), 1 / cores, 1.0, 0)
    spent["locust (the load generator)"] = round((_children_cpu() - generator_before) / cores)
    rows = {f"{r['kind']} {r['name']}": r for r in document["requests"]}
    availability = rows.get("GET /v1/events/:id/availability", {})
    hold = rows.get("POST hold", {})
    return {
        "customers": sizes.customers,
        "ramp_seconds": sizes.ramp_seconds,
        "requests": document["total"]["requests"],
        "failed_requests": document["total"]["failures"],
        "failures": document["failures"][:5],
        "availability_p99_ms": availability.get("p99_ms"),
        "hold_p99_ms": hold.get("p99_ms"),
        "hold_p50_ms": hold.get("p50_ms"),
        **{k: document["sale"][k] for k in ("seats", "seats_sold", "lost_races")},
        "sold_out_after_seconds": document["sale"]["sold_out_after_seconds"],
        "time_in_queue_ms": document["sale"]["time_in_queue_ms"],
        "preparation": document["sale"]["preparation"],
        "check": document["correctness"],
        # Percent of one core each process used over the sale (2 cores = 200).
        "cpu_percent": dict(sorted(spent.items(), key=lambda item: -item[1])),
        "report": str(out / "report.html"),
    }


def _children_cpu() -> float:
    """CPU seconds of this process's children that have exited (Locust)."""
    times = psutil.Process().cpu_times()
    return float(times.children_user + times.children_system)


def run(plan: Plan, sizes: Sizes, out: Path, say: Say) -> dict[str, Any]:
    http = f"http://{plan.edge_http()}"
    admin = local_admin_token(http)
    report: dict[str, Any] = {"sizes": sizes.__dict__}
    event_id = new_event(http, admin, "Bench Sale")
    say(f"sale event {event_id}")

    if "bytes" in sizes.parts:
        report["bytes"] = wire_bytes(http, event_id)
        say(_bytes_lines(report["bytes"]))
    if "reads" in sizes.parts:
        report["reads"] = reads_against_direct_response(
            plan, http, event_id, sizes.read_requests, 16
        )
        say(_reads_line(report["reads"]))
    if "holds" in sizes.parts:
        holds_event = new_event(http, admin, "Bench Holds")
        tokens = mint(plan, sizes.concurrency).tokens
        report["holds"] = holds_against_database(
            plan, http, holds_event, tokens, sizes.hold_seconds
        )
        say(_holds_line(report["holds"]))
    if "websockets" in sizes.parts:
        report["websockets"] = websockets(plan, http, event_id, sizes.websockets)
        say(_websockets_line(report["websockets"]))
    if "sale" in sizes.parts:
        say(f"the sale: {sizes.customers} customers over {sizes.ramp_seconds:.0f}s ...")
        report["sale"] = sale(plan, http, admin, event_id, sizes, out / "sale")
        say(_sale_lines(report["sale"]))
    (out / "bench-sale.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def _bytes_lines(figures: dict[str, dict[str, int]]) -> str:
    lines = ["bytes on the wire (5,000-seat event):"]
    for name, row in figures.items():
        lines.append(f"  {name:<20}" + "  ".join(f"{k} {v:,}" for k, v in row.items()))
    return "\n".join(lines)


def _reads_line(figures: dict[str, Any]) -> str:
    edge, direct = figures["edge"], figures["direct_response"]
    return (
        f"availability reads (h2load, {figures['body_bytes']:,} B): edge "
        f"{edge['per_second']:,.0f}/s ({edge['non_2xx']} non-2xx) vs direct response "
        f"{direct['per_second']:,.0f}/s: ratio {figures['ratio']:.2f} (target >= 0.5)"
    )


def _holds_line(figures: dict[str, Any]) -> str:
    edge, database = figures["edge"], figures["database_loop"]
    return (
        f"holds at concurrency {figures['concurrency']}: edge {edge['per_second']}/s "
        f"(p99 {edge['p99_ms']} ms, {edge['failed']} failed) vs asyncpg loop "
        f"{database['per_second']}/s: ratio {figures['ratio']:.2f} (target >= 0.3)"
    )


def _websockets_line(figures: dict[str, Any]) -> str:
    return (
        f"websockets: {figures['connected']:,} of {figures['asked']:,} held at once, "
        f"{figures['refused']} refused {figures['refused_because'] or ''}, "
        f"{figures['dropped']} dropped; memory per socket: edge "
        f"{figures['edge_bytes_per_socket'] / 1024:.1f} KiB, realtime "
        f"{figures['realtime_bytes_per_socket'] / 1024:.1f} KiB"
    )


def _sale_lines(figures: dict[str, Any]) -> str:
    queue = figures["time_in_queue_ms"] or {}
    check = figures["check"]
    return "\n".join(
        [
            f"  {figures['requests']:,} requests, {figures['failed_requests']} failed"
            + (f": {figures['failures']}" if figures["failures"] else ""),
            f"  seats sold {figures['seats_sold']:,} of {figures['seats']:,}, "
            f"{figures['lost_races']:,} lost races, "
            + (
                f"sold out after {figures['sold_out_after_seconds']}s"
                if figures["sold_out_after_seconds"] is not None
                else "not sold out"
            ),
            f"  availability read p99 {figures['availability_p99_ms']} ms (target <= 300), "
            f"admitted customers' hold p50 {figures['hold_p50_ms']} ms, "
            f"p99 {figures['hold_p99_ms']} ms (target <= 1000)",
            f"  time in queue p50 {queue.get('p50_ms', 0) / 1000:.1f}s, "
            f"p99 {queue.get('p99_ms', 0) / 1000:.1f}s ({queue.get('count', 0)} admitted)",
            f"  check: {'ok' if check['ok'] else 'VIOLATIONS'} ({check['paid_orders']} paid "
            f"orders, {check['tickets']} tickets)",
            f"  customers prepared before the sale: {figures['preparation']}",
            "  CPU over the sale, % of one core: "
            + ", ".join(f"{name} {value:.0f}" for name, value in figures["cpu_percent"].items()),
        ]
    )
