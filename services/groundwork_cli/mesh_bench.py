"""`groundwork bench mesh`: what each hop of the request path costs, on the
running local mesh, every path beside the ceiling measured in the same run.

Paths, each loaded by h2load (closed loop, HTTP/2 unless said):
- the ceiling: the same Envoy build answering a direct response of the same body;
- the app alone: h2load straight onto an instance's Unix socket (native gRPC);
- one bare proxy (plaintext), and two bare proxies joined by mTLS, in front of
  the same instance: what a hop costs without the mesh's filters;
- edge + sidecar: the real path (mTLS, the edge's filters), REST over h2c and
  HTTP/1.1, and native gRPC.
for a public read (GetEvent: REST through the edge is micro-cached there, gRPC
is not; catalog answers it from Redis), the micro-cached availability read, an
uncached authenticated read (ListMyOrders,
Postgres behind it) and a write (a hold and its release, a Python client since
each pair needs the hold id). Then latency at a fixed rate (open loop) for the
app alone, behind the mTLS pair and behind the edge: what the hops add to p99.

CPU per path comes from /proc (user + system, children included: Postgres'
backends count for the database), for every mesh process and the bench's own,
as milliseconds per request (= CPU seconds per 1,000 requests)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
import jwt
import psutil

from groundwork_cli import bench_envoys, h2load
from groundwork_cli.customers import mint
from groundwork_cli.h2load import Load
from groundwork_cli.load import local_admin_token
from groundwork_cli.runtime import supervisor
from groundwork_cli.runtime.pki import Pki, ensure_server_cert
from groundwork_cli.runtime.plan import Plan
from groundwork_envoy.profiles import spiffe_id
from groundwork_loadtest.runner import new_event

Say = Callable[[str], None]

GET_EVENT = "/groundwork.catalog.v1.CatalogService/GetEvent"
LIST_ORDERS = "/groundwork.booking.v1.BookingService/ListMyOrders"
# The bench's own Envoys sit beside the edge on its address, above its ports.
PORTS = {"direct": 18100, "proxy": 18102, "mtls_client": 18104, "mtls_server": 18106}


# The bench's parts, in the order they run (`--only` picks some).
PARTS = ("public", "micro", "write", "authenticated")


@dataclass(frozen=True)
class Sizes:
    requests: int = 20_000
    connections: int = 16
    streams: int = 8
    write_seconds: float = 10
    write_concurrency: int = 16
    rate: int = 1000  # requests/s for the open-loop latency part
    rate_seconds: float = 5
    idle_seconds: float = 10
    parts: tuple[str, ...] = PARTS


@dataclass
class Row:
    path: str
    figures: dict[str, Any]
    cpu_ms: dict[str, float] = field(default_factory=dict)  # process -> ms per request


# CPU --------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system seconds of a process and its children (live ones: a
    Postgres backend's time counts while its connection is open)."""
    try:
        process = psutil.Process(pid)
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.NoSuchProcess:
        return 0.0


def cpu_per_request(
    before: dict[str, float], after: dict[str, float], requests: int, floor_ms: float = 0.01
) -> dict[str, float]:
    """Milliseconds of CPU per request for each process that used at least
    `floor_ms` per request, busiest first."""
    if requests <= 0:
        return {}
    return busiest(before, after, 1000 / requests, floor_ms, 3)


def busiest(
    before: dict[str, float], after: dict[str, float], scale: float, floor: float, digits: int
) -> dict[str, float]:
    """Each process's CPU seconds between two snapshots times `scale`, those at
    `floor` or above, busiest first."""
    used = {name: (after[name] - before.get(name, after[name])) * scale for name in after}
    return {
        name: round(value, digits)
        for name, value in sorted(used.items(), key=lambda item: -item[1])
        if value >= floor
    }


@dataclass
class Meter:
    """Every process worth watching: the mesh's (from supervisord) and the bench's."""

    pids: dict[str, int]

    @classmethod
    def of_mesh(cls, plan: Plan) -> Meter:
        rpc = supervisor.client(plan.layout)
        return cls({p["name"]: p["pid"] for p in rpc.getAllProcessInfo() if p["pid"]})

    def snapshot(self) -> dict[str, float]:
        return {name: _cpu_seconds(pid) for name, pid in self.pids.items()}


def app_calls(plan: Plan, service: str, method: str) -> dict[str, int]:
    """Calls of `method` every instance of `service` has answered, by status code
    (from each instance's Prometheus counters)."""
    from prometheus_client.parser import text_string_to_metric_families

    codes: dict[str, int] = {}
    for process in plan.services:
        if process.service != service:
            continue
        text = httpx.get(f"http://{process.env['GROUNDWORK_METRICS_LISTEN']}/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name != "groundwork_rpc_requests":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("method") == method:
                    code = sample.labels["code"]
                    codes[code] = codes.get(code, 0) + int(sample.value)
    return codes


def idle_cpu(meter: Meter, seconds: float, floor_percent: float = 0.1) -> dict[str, float]:
    """Percent of a core each process uses while nothing is asked of the mesh
    (health checks, polls, timers), busiest first."""
    before = meter.snapshot()
    time.sleep(seconds)
    return busiest(before, meter.snapshot(), 100 / seconds, floor_percent, 2)


# paths --------------------------------------------------------------------------


def _ratio(value: float, ceiling: float) -> float:
    return round(value / ceiling, 4) if ceiling else 0.0


@dataclass
class Bench:
    plan: Plan
    sizes: Sizes
    meter: Meter
    say: Say
    rows: dict[str, list[Row]] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://{self.plan.edge_http()}"

    def app_socket(self, service: str) -> str:
        return self.plan.profile.app_target(self.plan.mesh, service, 0)

    def load(self, group: str, path: str, load: Load, served: tuple[str, str] | None = None) -> Row:
        """One h2load run. For gRPC, `served` (service, method) counts the calls the
        app answered OK: h2load sees only HTTP statuses, and a gRPC error is a 200."""
        before = app_calls(self.plan, *served) if served else {}
        cpu = self.meter.snapshot()
        figures = h2load.run(load)
        row = Row(path, figures.as_dict())
        row.cpu_ms = cpu_per_request(cpu, self.meter.snapshot(), figures.succeeded)
        if served:
            after = app_calls(self.plan, *served)
            codes = {c: n - before.get(c, 0) for c, n in after.items() if n - before.get(c, 0)}
            row.figures["app_codes"] = codes
            row.figures["non_2xx"] += max(0, row.figures["succeeded"] - codes.get("OK", 0))
        return self.record(group, row)

    def record(self, group: str, row: Row) -> Row:
        """Keep and print a row; more than 1% failed is an error, not a figure."""
        self.rows.setdefault(group, []).append(row)
        self.say(_row_line(row, self.rows[group][0]))
        if row.figures["non_2xx"] > row.figures["requests"] * 0.01:
            raise RuntimeError(
                f"{row.path}: {row.figures['non_2xx']} of {row.figures['requests']} requests "
                f"failed ({row.figures.get('app_codes', {})}): is the mesh up with its limits "
                "raised (GROUNDWORK_EDGE_CLIENT_RPS, GROUNDWORK_EDGE_CLIENT_BURST, "
                "GROUNDWORK_RATELIMIT_USER_PER_MINUTE)?"
            )
        return row

    def find(self, group: str, path: str) -> Row:
        return next(row for row in self.rows[group] if row.path == path)

    def closed(self, url: str, **overrides: Any) -> Load:
        sizes = self.sizes
        load = Load(url, sizes.requests, sizes.connections, sizes.streams)
        return dataclasses.replace(load, **overrides)


def _grpc_load(bench: Bench, url: str, message: bytes, *headers: str, **overrides: Any) -> Load:
    return bench.closed(
        url, body=h2load.grpc_frame(message), headers=(*h2load.GRPC_HEADERS, *headers), **overrides
    )


def cached_read(bench: Bench, event_id: str, tls: bench_envoys.Tls) -> None:
    from groundwork.catalog.v1 import catalog_pb2

    group = (
        "public read: GetEvent (REST via the edge: its micro-cache; gRPC: not cached by "
        "the edge, catalog answers from Redis)"
    )
    bench.say(f"\n{group}")
    rest = f"/v1/events/{event_id}"
    body = httpx.get(bench.http + rest, headers={"accept-encoding": "identity"}).text
    message = catalog_pb2.GetEventRequest(event_id=event_id).SerializeToString()
    address = bench.plan.profile.edge_address()
    socket = bench.app_socket("catalog")
    served = ("catalog", GET_EVENT)
    p = PORTS
    server = f"{address}:{p['mtls_server']}"
    configs = {
        **bench_envoys.direct_config(address, p["direct"], body),
        **bench_envoys.proxy_config("proxy", address, p["proxy"], socket),
        **bench_envoys.proxy_config(
            "mtls_server", address, p["mtls_server"], socket, downstream_tls=tls
        ),
        **bench_envoys.proxy_config(
            "mtls_client", address, p["mtls_client"], server, upstream_tls=tls
        ),
    }
    with bench_envoys.running(configs) as started:
        bench.meter.pids.update({f"bench-{n}": s.pid for n, s in started.items()})
        direct = f"http://{address}:{p['direct']}"
        bench.load(group, "Envoy direct response, REST h2c (ceiling)", bench.closed(direct + rest))
        app = f"http://catalog{GET_EVENT}"
        bench.load(group, "app alone, gRPC", _grpc_load(bench, app, message, base=socket), served)
        proxied = f"http://{address}:{p['proxy']}{GET_EVENT}"
        bench.load(group, "one bare proxy, gRPC", _grpc_load(bench, proxied, message), served)
        paired = f"http://{address}:{p['mtls_client']}{GET_EVENT}"
        bench.load(
            group, "two bare proxies + mTLS, gRPC", _grpc_load(bench, paired, message), served
        )
        bench.load(group, "edge + sidecar, REST h2c", bench.closed(bench.http + rest))
        bench.load(
            group,
            "edge + sidecar, REST HTTP/1.1",
            bench.closed(bench.http + rest, http1=True, connections=32),
        )
        grpc_edge = bench.http + GET_EVENT
        bench.load(group, "edge + sidecar, gRPC", _grpc_load(bench, grpc_edge, message), served)
        # The slowest of the compared paths sets the fixed rate (see open_loop).
        compared = ("app alone, gRPC", "two bare proxies + mTLS, gRPC", "edge + sidecar, gRPC")
        sustained = min(bench.find(group, path).figures["per_second"] for path in compared)
        open_loop(bench, message, socket, paired, grpc_edge, sustained)


def open_loop(
    bench: Bench, message: bytes, socket: str, paired: str, edge: str, app_rate: float
) -> None:
    """The same read at a fixed rate: what each set of hops adds to p99. At half
    what the slowest compared path sustains closed-loop: near a path's limit,
    queueing would be the figure, not the hops."""
    rate, seconds = min(bench.sizes.rate, int(app_rate * 0.5)), bench.sizes.rate_seconds
    group = f"latency at {rate:,} req/s (open loop), GetEvent over gRPC"
    if rate < bench.sizes.rate:
        group += f" (half of the {app_rate:,.0f}/s the slowest path sustains)"
    bench.say(f"\n{group}")
    count = int(rate * seconds)
    for path, url, base in (
        ("app alone", f"http://catalog{GET_EVENT}", socket),
        ("two bare proxies + mTLS", paired, None),
        ("edge + sidecar", edge, None),
    ):
        load = _grpc_load(
            bench, url, message, requests=count, connections=1, streams=100, rate=rate, base=base
        )
        bench.load(group, path, load, ("catalog", GET_EVENT))


def micro_cached_read(bench: Bench, event_id: str) -> None:
    group = "micro-cached public read: availability (the edge answers from its cache)"
    bench.say(f"\n{group}")
    rest = f"/v1/events/{event_id}/availability"
    body = httpx.get(bench.http + rest, headers={"accept-encoding": "identity"}).text
    address, port = bench.plan.profile.edge_address(), PORTS["direct"]
    with bench_envoys.running(bench_envoys.direct_config(address, port, body)) as started:
        bench.meter.pids["bench-direct"] = started["direct"].pid
        direct = f"http://{address}:{port}{rest}"
        bench.load(group, "Envoy direct response, REST h2c (ceiling)", bench.closed(direct))
        bench.load(group, "edge micro-cache, REST h2c", bench.closed(bench.http + rest))


def authenticated_read(bench: Bench, token: str, user_id: str) -> None:
    from groundwork.booking.v1 import booking_pb2

    group = "uncached authenticated read: ListMyOrders (Postgres)"
    bench.say(f"\n{group}")
    bearer = f"authorization: Bearer {token}"
    body = httpx.get(
        bench.http + "/v1/orders",
        headers={"authorization": f"Bearer {token}", "accept-encoding": "identity"},
    ).text
    message = booking_pb2.ListMyOrdersRequest(page_size=20).SerializeToString()
    address, port = bench.plan.profile.edge_address(), PORTS["direct"]
    socket = bench.app_socket("booking")
    with bench_envoys.running(bench_envoys.direct_config(address, port, body)) as started:
        bench.meter.pids["bench-direct"] = started["direct"].pid
        direct = f"http://{address}:{port}/v1/orders"
        bench.load(group, "Envoy direct response, REST h2c (ceiling)", bench.closed(direct))
        app = f"http://booking{LIST_ORDERS}"
        bench.load(
            group,
            "app alone, gRPC",
            _grpc_load(bench, app, message, f"x-groundwork-user-id: {user_id}", base=socket),
            ("booking", LIST_ORDERS),
        )
        bench.load(
            group,
            "edge + sidecar, REST h2c",
            bench.closed(bench.http + "/v1/orders", headers=(bearer,)),
        )
        bench.load(
            group,
            "edge + sidecar, gRPC",
            _grpc_load(bench, bench.http + LIST_ORDERS, message, bearer),
            ("booking", LIST_ORDERS),
        )


# writes: a hold and its release -------------------------------------------------


@dataclass
class _Pairs:
    done: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)

    def figures(self, elapsed: float) -> dict[str, Any]:
        self.latencies.sort()
        return {
            "per_second": round(self.done / elapsed, 1),
            "requests": self.done + self.failed,
            "succeeded": self.done,
            "non_2xx": self.failed,
            "p50_ms": round(h2load.percentile(self.latencies, 0.5) * 1000, 2),
            "p99_ms": round(h2load.percentile(self.latencies, 0.99) * 1000, 2),
        }


async def _edge_pairs(
    http: str, event_id: str, token: str, seats: list[str], seconds: float
) -> _Pairs:
    pairs = _Pairs()
    deadline = time.monotonic() + seconds
    headers = {"authorization": f"Bearer {token}"}

    async def worker(seat: str, session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            body = {"event_id": event_id, "seat_ids": [seat], "idempotency_key": str(uuid.uuid4())}
            async with session.post(f"{http}/v1/holds", json=body, headers=headers) as held:
                hold = await held.json(content_type=None)
            if held.status != 200:
                pairs.failed += 1
                continue
            async with session.post(
                f"{http}/v1/holds/{hold['hold_id']}:release",
                json={"idempotency_key": str(uuid.uuid4())},
                headers=headers,
            ) as released:
                await released.read()
            if released.status != 200:
                pairs.failed += 1
                continue
            pairs.done += 1
            pairs.latencies.append(time.monotonic() - started)

    connector = aiohttp.TCPConnector(limit=len(seats))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(s, session) for s in seats))
    return pairs


async def _app_pairs(
    socket: str, event_id: str, user_id: str, seats: list[str], seconds: float
) -> _Pairs:
    from groundwork.booking.v1 import booking_pb2, booking_pb2_grpc

    pairs = _Pairs()
    deadline = time.monotonic() + seconds
    metadata = (("x-groundwork-user-id", user_id),)
    async with grpc.aio.insecure_channel(socket) as channel:
        stub = booking_pb2_grpc.BookingServiceStub(channel)

        async def worker(seat: str) -> None:
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    hold = await stub.HoldSeats(
                        booking_pb2.HoldSeatsRequest(
                            event_id=event_id, seat_ids=[seat], idempotency_key=str(uuid.uuid4())
                        ),
                        metadata=metadata,
                        timeout=15,
                    )
                    await stub.ReleaseHold(
                        booking_pb2.ReleaseHoldRequest(
                            hold_id=hold.hold_id, idempotency_key=str(uuid.uuid4())
                        ),
                        metadata=metadata,
                        timeout=15,
                    )
                except grpc.aio.AioRpcError:
                    pairs.failed += 1
                    continue
                pairs.done += 1
                pairs.latencies.append(time.monotonic() - started)

        await asyncio.gather(*(worker(s) for s in seats))
    return pairs


def writes(bench: Bench, event_id: str, token: str, user_id: str) -> None:
    group = "write: a hold and its release (Python clients, closed loop)"
    bench.say(f"\n{group}")
    seats = [
        s["seat_id"] for s in httpx.get(f"{bench.http}/v1/events/{event_id}/seats").json()["seats"]
    ]
    n, seconds = bench.sizes.write_concurrency, bench.sizes.write_seconds
    socket = bench.app_socket("booking")
    clients: list[tuple[str, Coroutine[Any, Any, _Pairs]]] = [
        ("app alone, gRPC", _app_pairs(socket, event_id, user_id, seats[:n], seconds)),
        (
            "edge + sidecar, REST",
            _edge_pairs(bench.http, event_id, token, seats[n : 2 * n], seconds),
        ),
    ]
    for path, client in clients:
        started, cpu = time.monotonic(), bench.meter.snapshot()
        pairs = asyncio.run(client)
        row = Row(path, pairs.figures(time.monotonic() - started))
        row.cpu_ms = cpu_per_request(cpu, bench.meter.snapshot(), pairs.done)
        bench.record(group, row)


# the run ------------------------------------------------------------------------


def bench_tls(plan: Plan) -> bench_envoys.Tls:
    pki = Pki(plan.layout.pki)
    ensure_server_cert(pki, "mesh/bench", ["bench"], [], [spiffe_id("local", "bench")])
    return bench_envoys.Tls(
        str(pki.cert("mesh/bench")), str(pki.key("mesh/bench")), str(pki.ca_cert)
    )


def _user_id(token: str) -> str:
    """The account a token of our own minting names (read, not verified)."""
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def run(plan: Plan, sizes: Sizes, out: Path | None, say: Say) -> dict[str, Any]:
    http = f"http://{plan.edge_http()}"
    admin = local_admin_token(http)
    event_id = new_event(http, admin, "Bench Mesh")
    token = mint(plan, 1).tokens[0]
    user_id = _user_id(token)
    bench = Bench(plan, sizes, Meter.of_mesh(plan), say)
    idle = idle_cpu(bench.meter, sizes.idle_seconds)
    say(
        f"idle for {sizes.idle_seconds:.0f}s, CPU % of a core: "
        + (", ".join(f"{name} {share:.2f}" for name, share in idle.items()) or "none above 0.1")
    )
    say(
        f"bench event {event_id}; h2load -c {sizes.connections} -m {sizes.streams}, "
        f"{sizes.requests:,} requests per path"
    )
    parts: dict[str, Callable[[], None]] = {
        "public": lambda: cached_read(bench, event_id, bench_tls(plan)),
        "micro": lambda: micro_cached_read(bench, event_id),
        "write": lambda: writes(bench, event_id, token, user_id),
        "authenticated": lambda: authenticated_read(bench, token, user_id),
    }
    for name in PARTS:
        if name in sizes.parts:
            parts[name]()
    report = {
        "sizes": sizes.__dict__,
        "idle_cpu_percent": idle,
        "groups": {
            group: [{"path": r.path, **r.figures, "cpu_ms_per_request": r.cpu_ms} for r in rows]
            for group, rows in bench.rows.items()
        },
        "ratios": ratios(bench.rows),
    }
    say("\n" + "\n".join(f"{k}: {v}" for k, v in report["ratios"].items()))
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def ratios(rows: dict[str, list[Row]]) -> dict[str, float]:
    """The figures the targets are stated in."""

    def find(group_prefix: str, path: str) -> Row | None:
        for group, members in rows.items():
            if group.startswith(group_prefix):
                for row in members:
                    if row.path == path:
                        return row
        return None

    def rate(group: str, path: str) -> float:
        row = find(group, path)
        return float(row.figures["per_second"]) if row else 0.0

    ceiling = rate("public", "Envoy direct response, REST h2c (ceiling)")
    result = {
        "public read, edge REST (micro-cache) / ceiling": _ratio(
            rate("public", "edge + sidecar, REST h2c"), ceiling
        ),
        "public read, edge gRPC (not cached), req/s": rate("public", "edge + sidecar, gRPC"),
        "public read, app alone / ceiling": _ratio(rate("public", "app alone, gRPC"), ceiling),
        # The same read, uncached for both: an authenticated one is never stored.
        "authenticated read, edge gRPC / edge REST": _ratio(
            rate("uncached", "edge + sidecar, gRPC"), rate("uncached", "edge + sidecar, REST h2c")
        ),
        "micro-cached read, edge / ceiling": _ratio(
            rate("micro", "edge micro-cache, REST h2c"),
            rate("micro", "Envoy direct response, REST h2c (ceiling)"),
        ),
    }
    app, paired = find("latency", "app alone"), find("latency", "two bare proxies + mTLS")
    edge = find("latency", "edge + sidecar")
    if app and paired:
        result["p99 added by two proxies + mTLS, ms"] = round(
            paired.figures["p99_ms"] - app.figures["p99_ms"], 2
        )
    if app and edge:
        result["p99 added by edge + sidecar, ms"] = round(
            edge.figures["p99_ms"] - app.figures["p99_ms"], 2
        )
    row = find("public", "edge + sidecar, gRPC")  # the whole path: not cached
    if row:
        # CPU ms per request is vCPU at 1,000 req/s: the same number. The sidecars
        # share the requests, so theirs is summed: what one would use for all.
        result["edge vCPU per 1,000 req/s"] = row.cpu_ms.get("edge", 0.0)
        result["sidecar vCPU per 1,000 req/s"] = round(
            sum(ms for name, ms in row.cpu_ms.items() if name.startswith("sidecar-catalog-")), 3
        )
    return result


def _row_line(row: Row, first: Row) -> str:
    f = row.figures
    ceiling = first.figures["per_second"]
    cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in list(row.cpu_ms.items())[:6])
    return (
        f"  {row.path:<42} {f['per_second']:>9,.0f}/s  p50 {f['p50_ms']:>7.2f} ms  "
        f"p99 {f['p99_ms']:>7.2f} ms  x{_ratio(f['per_second'], ceiling):<6}  "
        f"non-2xx {f['non_2xx']}  cpu ms/req: {cpu}"
    )
