"""groundwork: run the local mesh and operate the services.

groundwork up | down [--purge] | status | logs [NAME] | demo
groundwork migrate [SERVICE] | seed [--reset] | envoy-config PROFILE DIR
groundwork policy apply FILE | delete NAME | list
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

import click

from groundwork_cli.runtime import mesh, supervisor
from groundwork_cli.runtime.jaeger import JaegerNotFound
from groundwork_cli.runtime.plan import Plan, build
from groundwork_cli.runtime.settings import RuntimeSettings
from groundwork_shared.settings import describe_errors


def _plan() -> Plan:
    from pydantic import ValidationError

    try:
        return build(RuntimeSettings())
    except ValidationError as error:
        raise click.ClickException(describe_errors(RuntimeSettings, error)) from error
    except (JaegerNotFound, ValueError) as error:  # ValueError: an override mesh.yaml refuses
        raise click.ClickException(str(error)) from error


def _say(message: str) -> None:
    click.echo(message)


@click.group()
def cli() -> None:
    """Groundwork: a flash-sale ticketing backend on a local Envoy mesh."""


@cli.command()
@click.option(
    "--keep-on-failure",
    is_flag=True,
    help="Leave everything running when a step fails, to look at it.",
)
def up(keep_on_failure: bool) -> None:
    """Start Postgres, Redis, every service, sidecar and the edge; wait until healthy."""
    plan = _plan()
    started = time.monotonic()
    try:
        timeout = RuntimeSettings().start_timeout
        if not mesh.up(plan, timeout, _say, cleanup=not keep_on_failure):
            click.echo(
                f"the mesh is already up (state in {plan.layout.root}); "
                "`groundwork status` shows it, `groundwork down` stops it"
            )
            return
    except (mesh.MeshError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"\nmesh up in {time.monotonic() - started:.1f}s\n")
    from groundwork_cli.runtime.policies import review

    for name, reason in review(plan).not_applied.items():
        click.echo(f"warning: trafficpolicy/{name} is not applied: {reason}")
    _endpoints(plan)


def _endpoints(plan: Plan) -> None:
    pki = plan.layout.pki
    rows = [
        ("REST + gRPC (h1, h2c)", f"http://{plan.edge_http()}"),
        ("REST + gRPC (TLS, h1/h2)", f"https://{plan.edge_https()}   CA: {pki / 'ca.crt'}"),
        ("edge admin", f"http://{plan.edge_admin()}"),
        ("Postgres", plan.postgres.host + ":5432" if plan.postgres else "external"),
        ("Redis", plan.redis_url()),
        ("state and logs", str(plan.layout.root)),
    ]
    if plan.profile.otlp_endpoint:
        rows.append(("traces (OTLP/gRPC)", plan.profile.otlp_endpoint))
    if plan.jaeger:
        rows.append(("Jaeger UI", plan.jaeger.ui()))
    for label, value in rows:
        click.echo(f"  {label:<26} {value}")
    click.echo(f"\n  try:  curl -s http://{plan.edge_http()}/v1/events?page_size=2")
    if plan.layout.traces_db.exists() or RuntimeSettings().traces:
        click.echo("        groundwork trace --last   (or the x-groundwork-trace-id of a reply)")
    click.echo("  stop: groundwork down")


@cli.command()
@click.option("--purge", is_flag=True, help="Also delete the state directory (data, certs, logs).")
def down(purge: bool) -> None:
    """Stop every process of the mesh; keep its data unless --purge."""
    plan = _plan()
    if not supervisor.running(plan.layout):
        click.echo("the mesh is not running")
    leftovers = mesh.down(plan, _say, purge=purge)
    if leftovers:
        click.echo("killed processes that outlived the supervisor: " + ", ".join(leftovers))
    click.echo("mesh down" + ("" if purge else f"; data kept in {plan.layout.root}"))


@cli.command()
def status() -> None:
    """Every process and the health of every Envoy cluster. Exit 1 unless all healthy."""
    plan = _plan()
    if not supervisor.running(plan.layout):
        click.echo("the mesh is not running")
        sys.exit(3)
    healthy = True
    click.echo(f"{'PROCESS':<22}{'STATE':<10}{'PID':>8}  UPTIME")
    for p in mesh.process_status(plan):
        healthy &= p.state == "RUNNING"
        click.echo(f"{p.name:<22}{p.state:<10}{p.pid:>8}  {p.uptime}")
    click.echo(f"\n{'ENVOY':<22}{'CLUSTER':<22}HEALTHY")
    for envoy, clusters in asyncio.run(mesh.cluster_status(plan)).items():
        if isinstance(clusters, str):
            healthy = False
            click.echo(f"{envoy:<22}{clusters}")
            continue
        for cluster in clusters:
            healthy &= cluster.ok
            mark = "ok" if cluster.ok else "DEGRADED"
            click.echo(f"{envoy:<22}{cluster.name:<22}{cluster.healthy}/{cluster.total} {mark}")
    click.echo(f"\n{'SERVICE':<22}RPCS SINCE START")
    for service, line in _rpc_lines(plan):
        click.echo(f"{service:<22}{line}")
    click.echo(f"\n{_cache_line(plan)}")
    click.echo(_realtime_line(plan))
    click.echo(_waiting_rooms_line(plan))
    click.echo("\nall healthy" if healthy else "\nNOT all healthy")
    sys.exit(0 if healthy else 1)


def _rpc_lines(plan: Plan) -> list[tuple[str, str]]:
    """Each gRPC service's requests, errors and latency over all its instances."""
    import httpx

    from groundwork_cli.rpc_figures import figures

    async def read(address: str) -> str:
        async with httpx.AsyncClient(timeout=2) as client:
            reply = await client.get(f"http://{address}:{plan.mesh.ports.metrics}/metrics")
            reply.raise_for_status()
            return reply.text

    async def service(name: str, instances: int) -> str:
        addresses = [plan.profile.listen_address(name, i) for i in range(instances)]
        try:
            texts = await asyncio.gather(*(read(a) for a in addresses))
        except httpx.HTTPError as error:
            return f"unknown ({error!r})"
        return figures(texts).describe()

    async def read_all() -> list[tuple[str, str]]:
        grpc = [(n, s.instances) for n, s in plan.mesh.services.items() if s.protocol == "grpc"]
        lines = await asyncio.gather(*(service(n, i) for n, i in grpc))
        return [(n, line) for (n, _), line in zip(grpc, lines, strict=True)]

    return asyncio.run(read_all())


def _cache_line(plan: Plan) -> str:
    """The catalog cache's hit ratio and every consumer group's lag on the bus."""
    from groundwork_shared.bus import group_lags
    from groundwork_shared.cache import hit_ratio
    from groundwork_shared.redis import connect

    async def read() -> tuple[tuple[int, int], dict[str, int]]:
        redis = connect(plan.redis_url())
        try:
            return await hit_ratio(redis, "catalog"), await group_lags(redis, "booking")
        finally:
            await redis.aclose()

    try:
        (hits, misses), lags = asyncio.run(read())
    except Exception as error:
        return f"catalog cache and bus: unknown ({error!r})"
    total = hits + misses
    ratio = f"{hits / total:.0%}" if total else "n/a"
    groups = ", ".join(f"{g} {n}" for g, n in sorted(lags.items())) or "no consumer groups yet"
    return (
        f"catalog cache: {hits} hits, {misses} misses, hit ratio {ratio}\n"
        f"bus lag on stream booking: {groups}"
    )


def _waiting_rooms_line(plan: Plan) -> str:
    """Each waiting room's queue, active sessions and admission rate, from Redis."""
    from groundwork_shared.redis import connect
    from groundwork_waitingroom.repository import Figures, Rooms

    async def read() -> list[Figures]:
        redis = connect(plan.redis_url())
        try:
            rooms = Rooms(redis)
            found = [await rooms.get(e) for e in await rooms.events()]
            return [f for f in found if f is not None]
        finally:
            await redis.aclose()

    try:
        rooms = asyncio.run(read())
    except Exception as error:
        return f"waiting rooms: unknown ({error!r})"
    if not rooms:
        return "waiting rooms: none"
    lines = [
        f"  {f.room.event_id}  {'PAUSED ' if f.room.paused else ''}queue {f.queue_length}, "
        f"active {f.active}/{f.room.total_active_users}, admitted {f.served} "
        f"({f.admitted_last_minute} in the last minute), rate {f.rate_per_minute:.0f}/min "
        f"({f.room.mode.value}"
        + (f", booking p99 {f.observed_booking_p99_ms:.0f} ms" if f.observed_booking_p99_ms else "")
        + ")"
        for f in rooms
    ]
    return "waiting rooms:\n" + "\n".join(lines)


def _realtime_line(plan: Plan) -> str:
    """Open WebSockets and slow clients dropped, per realtime instance."""
    from groundwork_cli.runtime.probes import http_get

    async def read() -> list[str]:
        parts = []
        for process in plan.services:
            svc = plan.mesh.services[process.name.rsplit("-", 1)[0]]
            if svc.protocol != "websocket":
                continue
            try:
                health = (await http_get(process.listen, svc.health_path)).json()
                parts.append(
                    f"{process.name} {health['connections']} connections, "
                    f"{health['dropped_slow_clients']} slow clients dropped"
                )
            except Exception as error:
                parts.append(f"{process.name} unknown ({error!r})")
        return parts

    return "websockets: " + ("; ".join(asyncio.run(read())) or "no realtime instances")


@cli.command()
@click.argument("name", required=False)
@click.option("--follow/--no-follow", "-f", default=True, show_default=True)
@click.option("-n", "--lines", default=20, show_default=True, help="Lines of history to show.")
def logs(name: str | None, follow: bool, lines: int) -> None:
    """Follow the logs of one process (or all)."""
    from groundwork_cli.logs import follow_logs

    plan = _plan()
    names = [p.name for p in plan.processes()] + ["supervisord"]
    if name and name not in names:
        raise click.ClickException(f"no process {name!r}; one of: {', '.join(names)}")
    # Each process's own log and its output (see Layout.logs_of); supervisord's one.
    paths = {
        label: path
        for n in ([name] if name else names)
        for label, path in (
            {n: plan.layout.log(n)} if n == "supervisord" else plan.layout.logs_of(n)
        ).items()
    }
    with contextlib.suppress(KeyboardInterrupt):
        follow_logs(paths, lines, follow, prefix=True)


@cli.command("migrate")
def migrate_cmd() -> None:
    """Create each service's database and apply its pending migrations."""
    plan = _plan()
    asyncio.run(mesh.migrate_and_seed(plan, _say, seed=False))


@cli.command()
@click.option("--reset", is_flag=True, help="Delete the catalog's data and load the sample again.")
def seed(reset: bool) -> None:
    """Load the sample catalog (a no-op when events exist, unless --reset)."""
    plan = _plan()
    asyncio.run(mesh.migrate_and_seed(plan, _say, seed=True, reset=reset))


@cli.command()
def demo() -> None:
    """Make a few requests through the edge and print them."""
    from groundwork_cli.demo import run_demo

    plan = _plan()
    sys.exit(run_demo(plan))


@cli.command()
@click.argument("trace_id", required=False)
@click.option("--last", is_flag=True, help="The newest trace the edge started.")
def trace(trace_id: str | None, last: bool) -> None:
    """Print a trace's waterfall from the built-in receiver (GROUNDWORK_TRACES=1)."""
    from groundwork_cli.traces import SpanStore, waterfall

    plan = _plan()
    if not plan.layout.traces_db.exists():
        raise click.ClickException(
            "no traces kept here: start the mesh with GROUNDWORK_TRACES=1 "
            "(or read them in the collector GROUNDWORK_OTLP_ENDPOINT names)"
        )
    if bool(trace_id) == last:
        raise click.UsageError("give a TRACE_ID or --last")
    store = SpanStore(plan.layout.traces_db)
    try:
        wanted = trace_id or store.last_trace("edge") or store.last_trace()
        spans = store.spans(wanted) if wanted else []
    finally:
        store.close()
    if not spans:
        raise click.ClickException(f"no spans for trace {wanted or '(none yet)'}")
    click.echo(waterfall(spans))


@cli.command("envoy-config")
@click.argument("profile", type=click.Choice(["local", "kubernetes"]))
@click.argument("directory", type=click.Path(path_type=Path))
def envoy_config(profile: str, directory: Path) -> None:
    """Render the edge and sidecar Envoy configs of a profile into DIRECTORY."""
    from groundwork_envoy.profiles import KubernetesProfile
    from groundwork_envoy.render import render, write

    plan = _plan()
    target = plan.profile if profile == "local" else KubernetesProfile()
    for path in write(render(plan.mesh, target), directory):
        click.echo(path)


@cli.group()
def bench() -> None:
    """Benchmarks of the running mesh that print figures beside their ceilings."""


@bench.command("mesh")
@click.option("--requests", default=20_000, show_default=True, type=click.IntRange(100))
@click.option("--connections", default=16, show_default=True, type=click.IntRange(1))
@click.option("--streams", default=8, show_default=True, type=click.IntRange(1))
@click.option("--write-seconds", default=10.0, show_default=True)
@click.option("--rate", default=1000, show_default=True, help="Open-loop part: requests/s.")
@click.option("--rate-seconds", default=5.0, show_default=True)
@click.option("--idle-seconds", default=10.0, show_default=True, help="Idle CPU measured first.")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(["public", "micro", "write", "authenticated"]),
    help="Run only these parts (repeatable); default: all.",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the figures here.")
def bench_mesh(
    requests: int,
    connections: int,
    streams: int,
    write_seconds: float,
    rate: int,
    rate_seconds: float,
    idle_seconds: float,
    only: tuple[str, ...],
    json_out: Path | None,
) -> None:
    """What each hop of the request path costs: req/s, p50/p99 and CPU per request
    of every process, beside Envoy's direct response (see BENCHMARKS.md). Start the
    mesh with the per-client limits raised first (the load comes from one address)."""
    from groundwork_cli.mesh_bench import PARTS, Sizes, run

    plan = _plan()
    if not supervisor.running(plan.layout):
        raise click.ClickException("the mesh is not running: groundwork up")
    sizes = Sizes(
        requests=requests,
        connections=connections,
        streams=streams,
        write_seconds=write_seconds,
        rate=rate,
        rate_seconds=rate_seconds,
        idle_seconds=idle_seconds,
        parts=only or PARTS,
    )
    run(plan, sizes, json_out, click.echo)
    if json_out:
        click.echo(f"\nJSON: {json_out}")


@bench.command("scale")
@click.option("--service", default="catalog", show_default=True)
@click.option("--max", "most", default=3, show_default=True, type=click.IntRange(1, 8))
@click.option("--requests", default=10_000, show_default=True, type=click.IntRange(100))
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the figures here.")
def bench_scale(service: str, most: int, requests: int, json_out: Path | None) -> None:
    """The throughput each added instance of SERVICE buys through the edge: the
    mesh restarted with 1..MAX instances (GROUNDWORK_INSTANCES), then as it was."""
    import json

    from groundwork_cli.scale_bench import run

    plan = _plan()
    if not supervisor.running(plan.layout):
        raise click.ClickException("the mesh is not running: groundwork up")
    try:
        report = run(RuntimeSettings(), service, most, requests, click.echo)
    except (ValueError, mesh.MeshError) as error:
        raise click.ClickException(str(error)) from error
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"\nJSON: {json_out}")


@bench.command("sale")
@click.option("--customers", default=5000, show_default=True, type=click.IntRange(10))
@click.option("--ramp", default=30.0, show_default=True, help="Seconds over which they arrive.")
@click.option(
    "--sale-seconds",
    default=120.0,
    show_default=True,
    help="How long the sale runs after the ramp (the queue drains, seats sell).",
)
@click.option("--websockets", default=5000, show_default=True, type=click.IntRange(1))
@click.option("--reads", default=50_000, show_default=True, help="h2load requests per round.")
@click.option("--out", type=click.Path(path_type=Path), help="Default: loadtest-results/<run>")
def bench_sale(
    customers: int,
    ramp: float,
    sale_seconds: float,
    websockets: int,
    reads: int,
    out: Path | None,
) -> None:
    """A flash sale against this machine's limits (see BENCHMARKS.md). Start the
    mesh with the per-client limits raised first (the load comes from one address)."""
    import time

    from groundwork_cli.sale_bench import Sizes, run

    plan = _plan()
    if not supervisor.running(plan.layout):
        raise click.ClickException("the mesh is not running: groundwork up")
    directory = out or Path("loadtest-results") / f"{time.strftime('%Y%m%d-%H%M%S')}-bench-sale"
    directory.mkdir(parents=True, exist_ok=True)
    sizes = Sizes(
        customers=customers,
        ramp_seconds=ramp,
        sale_seconds=sale_seconds,
        websockets=websockets,
        read_requests=reads,
    )
    run(plan, sizes, directory, click.echo)
    click.echo(f"\nJSON: {directory / 'bench-sale.json'}")


def _register_load_commands() -> None:
    from groundwork_cli.load import check_cmd, load

    cli.add_command(load)
    cli.add_command(check_cmd)


def _register_kube_commands() -> None:
    from groundwork_cli.kube import kube
    from groundwork_cli.policy import policy

    cli.add_command(kube)
    cli.add_command(policy)


_register_load_commands()
_register_kube_commands()
