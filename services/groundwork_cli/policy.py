"""groundwork policy apply FILE | delete NAME | list: TrafficPolicies on the local
mesh, live (the Envoys reload their dynamic config files; nothing restarts)."""

from __future__ import annotations

from typing import TextIO

import click

from groundwork_cli.runtime import policies
from groundwork_cli.runtime.plan import Plan
from groundwork_envoy.policy import PolicyError
from groundwork_envoy.render import Rendered


def _plan() -> Plan:
    from groundwork_cli.main import _plan as plan  # main registers this group: import late

    return plan()


def _where(rendered: Rendered, name: str) -> str:
    return ", ".join(rendered.touched.get(name, [])) or "no Envoy (nothing to change)"


@click.group()
def policy() -> None:
    """TrafficPolicies (the Kubernetes custom resource, as a file) on the local mesh."""


@policy.command("apply")
@click.argument("file", type=click.File("r"))
def apply_cmd(file: TextIO) -> None:
    """Apply (or update) the TrafficPolicy in FILE ('-' for stdin)."""
    plan = _plan()
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
def delete_cmd(name: str) -> None:
    """Delete the TrafficPolicy NAME: its Envoys return to the mesh's defaults."""
    try:
        policies.delete(_plan(), name)
    except PolicyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"trafficpolicy/{name} deleted")


@policy.command("list")
def list_cmd() -> None:
    """The applied TrafficPolicies and the Envoys each one changes."""
    found = policies.review(_plan())
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
def bench_cmd(calls: int, rounds: int) -> None:
    """What retries cost and hide, and how fast a policy goes live (running mesh)."""
    from groundwork_cli.policy_bench import run

    try:
        run(_plan(), calls, rounds, click.echo)
    except PolicyError as error:
        raise click.ClickException(str(error)) from error
