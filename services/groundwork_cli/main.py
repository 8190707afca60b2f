"""groundwork: run the local mesh and operate the services.

groundwork up | down [--purge] | status | logs [NAME] | demo
groundwork migrate [SERVICE] | seed [--reset] | envoy-config PROFILE DIR
groundwork policy apply FILE | delete NAME | list
groundwork lab [EXPERIMENT...] | --list | report
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

import click

from groundwork_cli import status_view
from groundwork_cli.bench import bench
from groundwork_cli.kube import kube
from groundwork_cli.lab.cli import lab
from groundwork_cli.load import check_cmd, load
from groundwork_cli.policy import policy
from groundwork_cli.runtime import envoy_admin, mesh, supervisor
from groundwork_cli.runtime.plan import Plan
from groundwork_cli.session import Session, pass_session
from groundwork_shared.database import redact


def _say(message: str) -> None:
    click.echo(message)


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Groundwork: a flash-sale ticketing backend on a local Envoy mesh."""
    ctx.ensure_object(Session)  # settings and plan, loaded when a command first asks


@cli.command()
@click.option(
    "--keep-on-failure",
    is_flag=True,
    help="Leave everything running when a step fails, to look at it.",
)
@pass_session
def up(session: Session, keep_on_failure: bool) -> None:
    """Start Postgres, Redis, every service, sidecar and the edge; wait until healthy."""
    plan = session.plan
    started = time.monotonic()
    try:
        timeout = session.settings.start_timeout
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
    _endpoints(plan, session.settings.traces)


def _endpoints(plan: Plan, traces: bool) -> None:
    pki = plan.layout.pki
    rows = [
        ("web front end", f"http://{plan.edge_http()}/"),
        ("REST + gRPC (h1, h2c)", f"http://{plan.edge_http()}"),
        ("REST + gRPC (TLS, h1/h2)", f"https://{plan.edge_https()}   CA: {pki / 'ca.crt'}"),
        ("edge admin (this user)", envoy_admin.curl(plan.edge_admin(), "/stats")),
        ("edge metrics", f"http://{plan.edge_metrics()}/stats/prometheus"),
        ("Postgres", plan.stores.postgres.host + ":5432" if plan.stores.postgres else "external"),
        ("Redis", redact(plan.redis_url())),
        ("state and logs", str(plan.layout.root)),
    ]
    if plan.profile.otlp_endpoint:
        rows.append(("traces (OTLP/gRPC)", plan.profile.otlp_endpoint))
    if plan.jaeger:
        rows.append(("Jaeger UI", plan.jaeger.ui()))
    for label, value in rows:
        click.echo(f"  {label:<26} {value}")
    click.echo(f"\n  try:  curl -s http://{plan.edge_http()}/v1/events?page_size=2")
    if plan.layout.traces_db.exists() or traces:
        click.echo("        groundwork trace --last   (or the x-groundwork-trace-id of a reply)")
    click.echo("  stop: groundwork down")


@cli.command()
@click.option("--purge", is_flag=True, help="Also delete the state directory (data, certs, logs).")
@pass_session
def down(session: Session, purge: bool) -> None:
    """Stop every process of the mesh; keep its data unless --purge."""
    plan = session.plan
    if not supervisor.running(plan.layout):
        click.echo("the mesh is not running")
    leftovers = mesh.down(plan, _say, purge=purge)
    if leftovers:
        click.echo("killed processes that outlived the supervisor: " + ", ".join(leftovers))
    click.echo("mesh down" + ("" if purge else f"; data kept in {plan.layout.root}"))


@cli.command()
@pass_session
def status(session: Session) -> None:
    """Every process and the health of every Envoy cluster. Exit 1 unless all healthy."""
    plan = session.plan
    if not supervisor.running(plan.layout):
        click.echo("the mesh is not running")
        sys.exit(3)
    report = asyncio.run(status_view.read(plan))
    click.echo("\n".join(report.lines()))
    sys.exit(0 if report.healthy else 1)


@cli.command()
@click.argument("name", required=False)
@click.option("--follow/--no-follow", "-f", default=True, show_default=True)
@click.option("-n", "--lines", default=20, show_default=True, help="Lines of history to show.")
@pass_session
def logs(session: Session, name: str | None, follow: bool, lines: int) -> None:
    """Follow the logs of one process (or all)."""
    from groundwork_cli.logs import follow_logs

    plan = session.plan
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
@pass_session
def migrate_cmd(session: Session) -> None:
    """Create each service's database and apply its pending migrations."""
    plan = session.plan
    asyncio.run(mesh.migrate_and_seed(plan, _say, seed=False))


@cli.command()
@click.option("--reset", is_flag=True, help="Delete the catalog's data and load the sample again.")
@pass_session
def seed(session: Session, reset: bool) -> None:
    """Load the sample catalog (a no-op when events exist, unless --reset)."""
    plan = session.plan
    asyncio.run(mesh.migrate_and_seed(plan, _say, seed=True, reset=reset))


@cli.command()
@pass_session
def demo(session: Session) -> None:
    """Make a few requests through the edge and print them."""
    from groundwork_cli.demo import run_demo

    plan = session.plan
    sys.exit(run_demo(plan))


@cli.command()
@click.argument("trace_id", required=False)
@click.option("--last", is_flag=True, help="The newest trace the edge started.")
@pass_session
def trace(session: Session, trace_id: str | None, last: bool) -> None:
    """Print a trace's waterfall from the built-in receiver (GROUNDWORK_TRACES=1)."""
    from groundwork_cli.traces import SpanStore, waterfall

    plan = session.plan
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
@pass_session
def envoy_config(session: Session, profile: str, directory: Path) -> None:
    """Render the edge and sidecar Envoy configs of a profile into DIRECTORY."""
    from groundwork_envoy.profiles import KubernetesProfile
    from groundwork_envoy.render import render, write

    plan = session.plan
    target = plan.profile if profile == "local" else KubernetesProfile()
    for path in write(render(plan.mesh, target), directory):
        click.echo(path)


for group in (load, check_cmd, bench, kube, policy, lab):
    cli.add_command(group)
