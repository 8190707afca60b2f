"""`groundwork bench mesh | scale | sale`: benchmarks of the running mesh that
print their figures beside the ceilings measured in the same run."""

from __future__ import annotations

from pathlib import Path

import click

from groundwork_cli.runtime import mesh, supervisor
from groundwork_cli.runtime.plan import Plan
from groundwork_cli.session import Session, pass_session


def _running(session: Session) -> Plan:
    """The plan of the mesh a benchmark measures, which must be up."""
    plan = session.plan
    if not supervisor.running(plan.layout):
        raise click.ClickException("the mesh is not running: groundwork up")
    return plan


@click.group()
def bench() -> None:
    """Benchmarks of the running mesh that print figures beside their ceilings."""


@bench.command("mesh")
@pass_session
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
    session: Session,
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

    plan = _running(session)
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
@pass_session
@click.option("--service", default="catalog", show_default=True)
@click.option("--max", "most", default=3, show_default=True, type=click.IntRange(1, 8))
@click.option("--requests", default=10_000, show_default=True, type=click.IntRange(100))
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the figures here.")
def bench_scale(
    session: Session, service: str, most: int, requests: int, json_out: Path | None
) -> None:
    """The throughput each added instance of SERVICE buys through the edge: the
    mesh restarted with 1..MAX instances (GROUNDWORK_INSTANCES), then as it was."""
    import json

    from groundwork_cli.scale_bench import run

    _running(session)  # the mesh must be up; scale_bench restarts it with each count
    try:
        report = run(session.settings, service, most, requests, click.echo)
    except (ValueError, mesh.MeshError) as error:
        raise click.ClickException(str(error)) from error
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"\nJSON: {json_out}")


@bench.command("sale")
@pass_session
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
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(["bytes", "reads", "holds", "websockets", "sale"]),
    help="Run only these parts (repeatable); default: all.",
)
def bench_sale(
    session: Session,
    customers: int,
    ramp: float,
    sale_seconds: float,
    websockets: int,
    reads: int,
    out: Path | None,
    only: tuple[str, ...],
) -> None:
    """A flash sale against this machine's limits (see BENCHMARKS.md). Start the
    mesh with the per-client limits raised first (the load comes from one address)."""
    import time

    from groundwork_cli.sale_bench import PARTS, Sizes, run

    plan = _running(session)
    directory = out or Path("loadtest-results") / f"{time.strftime('%Y%m%d-%H%M%S')}-bench-sale"
    directory.mkdir(parents=True, exist_ok=True)
    sizes = Sizes(
        customers=customers,
        ramp_seconds=ramp,
        sale_seconds=sale_seconds,
        websockets=websockets,
        read_requests=reads,
        parts=only or PARTS,
    )
    run(plan, sizes, directory, click.echo)
    click.echo(f"\nJSON: {directory / 'bench-sale.json'}")
