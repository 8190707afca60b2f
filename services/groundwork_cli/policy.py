"""groundwork policy apply FILE | delete NAME | list: TrafficPolicies on the local
mesh, live (the Envoys reload their dynamic config files; nothing restarts)."""

from __future__ import annotations

from typing import TextIO

import click

from groundwork_cli.runtime import policies
from groundwork_cli.session import Session, pass_session
from groundwork_envoy.policy import PolicyError
from groundwork_envoy.render import Rendered


def _where(rendered: Rendered, name: str) -> str:
    return ", ".join(rendered.touched.get(name, [])) or "no Envoy (nothing to change)"


@click.group()
def policy() -> None:
    """TrafficPolicies (the Kubernetes custom resource, as a file) on the local mesh."""


@policy.command("apply")
@click.argument("file", type=click.File("r"))
@pass_session
def apply_cmd(session: Session, file: TextIO) -> None:
    """Apply (or update) the TrafficPolicy in FILE ('-' for stdin)."""
    plan = session.plan
    try:
        applied, rendered = policies.apply(plan, file.read())
    except PolicyError as error:
        raise click.ClickException(f"not applied: {error}") from error
    click.echo(
        f"trafficpolicy/{applied.name} (generation {applied.generation}) applied to"
        f" {_where(rendered, applied.name)}"
    )


@policy.command("delete")
@click.argument("name")
@pass_session
def delete_cmd(session: Session, name: str) -> None:
    """Delete the TrafficPolicy NAME: its Envoys return to the mesh's defaults."""
    try:
        policies.delete(session.plan, name)
    except PolicyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"trafficpolicy/{name} deleted")


@policy.command("list")
@pass_session
def list_cmd(session: Session) -> None:
    """The applied TrafficPolicies and the Envoys each one changes."""
    found = policies.review(session.plan)
    if not found.policies and not found.not_applied:
        click.echo("no TrafficPolicies applied")
        return
    for item in found.policies:
        error = found.not_applied.get(item.name)
        state = (
            f"NOT APPLIED: {error}" if error else f"applied to {_where(found.rendered, item.name)}"
        )
        click.echo(f"{item.name}\t{item.spec.service}\tgeneration {item.generation}\t{state}")
    for name in sorted(set(found.not_applied) - {item.name for item in found.policies}):
        click.echo(f"{name}\t?\t?\tNOT APPLIED: {found.not_applied[name]}")


@policy.command("bench")
@click.option("--calls", default=600, show_default=True, help="Requests per variant.")
@click.option("--rounds", default=3, show_default=True, help="Alternating rounds.")
@pass_session
def bench_cmd(session: Session, calls: int, rounds: int) -> None:
    """What retries cost and hide, and how fast a policy goes live (running mesh)."""
    from groundwork_cli.policy_bench import run

    try:
        run(session.plan, calls, rounds, click.echo)
    except PolicyError as error:
        raise click.ClickException(str(error)) from error
