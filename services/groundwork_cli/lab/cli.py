"""`groundwork lab [EXPERIMENT...] | --list | report`."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from groundwork_cli.lab import report
from groundwork_cli.lab.experiments import EXPERIMENTS
from groundwork_cli.lab.outcome import save
from groundwork_cli.runtime import supervisor
from groundwork_cli.session import Session, pass_session

DEFAULT_OUT = Path("lab-results")


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("names", nargs=-1)
@click.option("--list", "listing", is_flag=True, help="Name the experiments and stop.")
@click.option("--quick", is_flag=True, help="A small, fast variant of each experiment.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Where the JSON, the plots and the report go.",
)
@pass_session
def lab(session: Session, names: tuple[str, ...], listing: bool, quick: bool, out: Path) -> None:
    """Run experiments against the running mesh (all by default), printing each
    one's table and saving its figures (JSON) and plot (PNG); `groundwork lab report`
    then writes one HTML page of everything in --out."""
    if listing:
        for experiment in EXPERIMENTS.values():
            click.echo(f"{experiment.name:<12} {experiment.title}")
        return
    if names == ("report",):
        click.echo(f"wrote {report.write(out)}")
        return
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise click.BadParameter(
            f"no experiment {', '.join(unknown)}; there are {', '.join(EXPERIMENTS)}",
            param_hint="EXPERIMENT",
        )
    plan = session.plan
    if not supervisor.running(plan.layout):
        raise click.ClickException("the mesh is not running: groundwork up")
    for name in names or tuple(EXPERIMENTS):
        click.secho(f"\n{EXPERIMENTS[name].title}", bold=True)
        outcome = EXPERIMENTS[name].run(plan, quick)
        outcome.command = shlex.join(["groundwork", "lab", name, *(["--quick"] if quick else [])])
        figures, plot = save(outcome, out)
        click.echo(outcome.table.text())
        click.echo(f"\n{outcome.explanation}\n\nsaved {figures} and {plot}")
