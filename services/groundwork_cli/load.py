"""`groundwork load SCENARIO` and `groundwork check`: Locust against the edge, then
the correctness check over the system's own databases."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click

from groundwork_cli.session import current
from groundwork_shared.database import database_url

SCENARIO_NAMES = ["browse", "buy", "flash-sale", "grpc", "reads"]


def _local_host() -> str:
    return f"http://{current().plan.edge_http()}"


def _databases(postgres: str | None) -> tuple[str, str]:
    """Booking's and ticketing's database URLs: on the server `postgres` names (its
    admin URL, as GROUNDWORK_POSTGRES_URL), else on the local mesh's."""
    if not postgres:
        postgres = current().plan.postgres_server_url()
    return database_url(postgres, "booking"), database_url(postgres, "ticketing")


def local_admin_token(host: str) -> str:
    """The local mesh's admin, logged in (its password is in the mesh's secrets)."""
    import httpx

    from groundwork_cli.runtime.secrets import ADMIN_EMAIL

    password = current().plan.secrets.admin_password()
    reply = httpx.post(
        f"{host}/v1/auth/login", json={"email": ADMIN_EMAIL, "password": password}, timeout=30
    )
    if reply.status_code != 200:
        raise click.ClickException(f"the local admin cannot log in: {reply.text}")
    return str(reply.json()["access_token"])


@click.command()
@click.argument("scenario", type=click.Choice(SCENARIO_NAMES))
@click.option("--host", help="Base URL of the edge. Default: the local mesh's.")
@click.option("-u", "--users", default=20, show_default=True, type=click.IntRange(1))
@click.option("-r", "--spawn-rate", default=10.0, show_default=True, type=click.FloatRange(0.1))
@click.option("-t", "--duration", default="30s", show_default=True, help="e.g. 45s, 2m")
@click.option(
    "--workers", default=0, show_default=True, type=click.IntRange(0), help="Local worker processes"
)
@click.option("--event-id", default="", help="Buy (and browse) only this event.")
@click.option("--ticket-wait", type=click.Choice(["poll", "websocket"]), default="poll")
@click.option("--accounts", default=200, show_default=True, type=click.IntRange(1))
@click.option(
    "--think",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Most seconds a user pauses between tasks; 0 saturates (for throughput).",
)
@click.option("--flash-users", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--flash-ramp", default=10.0, show_default=True, type=click.FloatRange(0.1))
@click.option("--flash-hold", default=20.0, show_default=True, type=click.FloatRange(0))
@click.option(
    "--waiting-room/--no-waiting-room",
    default=True,
    show_default=True,
    help="Flash sale: put the event behind a waiting room; customers queue first.",
)
@click.option("--room-active", default=500, show_default=True, type=click.IntRange(1))
@click.option(
    "--room-rate", default=6000, show_default=True, type=click.IntRange(1), help="Per minute."
)
@click.option(
    "--room-mode", type=click.Choice(["fixed", "adaptive"]), default="adaptive", show_default=True
)
@click.option("--room-target-ms", default=500, show_default=True, type=click.IntRange(10))
@click.option(
    "--admin-token",
    envvar="GROUNDWORK_ADMIN_TOKEN",
    help="To set up the waiting room. Default: the local mesh's admin logs in.",
)
@click.option(
    "--customers-file",
    type=click.Path(path_type=Path),
    default=Path("loadtest-results/customers.json"),
    show_default=True,
    help="Flash sale: customers' accounts (refresh tokens), kept between runs.",
)
@click.option("--postgres", help="Admin URL of the system's Postgres, for the check.")
@click.option("--no-check", is_flag=True, help="Skip the correctness check.")
@click.option("--out", type=click.Path(path_type=Path), help="Default: loadtest-results/<run>")
def load(
    scenario: str,
    host: str | None,
    users: int,
    spawn_rate: float,
    duration: str,
    workers: int,
    event_id: str,
    ticket_wait: str,
    accounts: int,
    think: float,
    flash_users: int,
    flash_ramp: float,
    flash_hold: float,
    waiting_room: bool,
    room_active: int,
    room_rate: int,
    room_mode: str,
    room_target_ms: int,
    admin_token: str | None,
    customers_file: Path,
    postgres: str | None,
    no_check: bool,
    out: Path | None,
) -> None:
    """Run a Locust SCENARIO headless; write result.json and report.html; check the
    system's state after it. Exit 1 on any failed request or correctness violation."""
    from groundwork_loadtest.runner import Databases, LoadError, Run, execute, table

    # Host and database both default to the local mesh; another host needs its own.
    if host is not None and postgres is None and not no_check:
        raise click.UsageError("a --host other than the local mesh needs --postgres or --no-check")
    target = host or _local_host()
    databases = None if no_check else Databases(*_databases(postgres))
    directory = out or Path("loadtest-results") / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}"
    room = None
    if scenario == "flash-sale" and waiting_room:
        room = {
            "total_active_users": room_active,
            "new_users_per_minute": room_rate,
            "mode": f"ADMISSION_MODE_{room_mode.upper()}",
            "target_booking_p99_ms": room_target_ms,
            "paused": False,
        }
        if not admin_token:
            if host is not None:
                raise click.UsageError("a --host other than the local mesh needs --admin-token")
            admin_token = local_admin_token(target)
    run = Run(
        scenario=scenario,
        host=target.rstrip("/"),
        out=directory,
        users=users,
        spawn_rate=spawn_rate,
        duration=duration,
        workers=workers,
        event_id=event_id,
        ticket_wait=ticket_wait,
        accounts=accounts,
        think=think,
        flash_users=flash_users,
        flash_ramp=flash_ramp,
        flash_hold=flash_hold,
        databases=databases,
        accounts_store=customers_file if scenario == "flash-sale" else None,
        room=room,
        admin_token=admin_token or "",
    )
    try:
        document = execute(run)
    except LoadError as error:
        raise click.ClickException(str(error)) from error
    click.echo(table(document))
    click.echo(f"\nJSON: {directory / 'result.json'}\nHTML: {directory / 'report.html'}")
    sys.exit(0 if document["ok"] else 1)


@click.command("check")
@click.option("--postgres", help="Admin URL of the system's Postgres. Default: the local mesh's.")
@click.option("--settle", default=30.0, show_default=True, help="Seconds to wait for tickets.")
def check_cmd(postgres: str | None, settle: float) -> None:
    """Check the system's state: no seat sold twice, every paid order has its tickets,
    every hold converted or expired. Exit 1 on any violation."""
    from groundwork_loadtest.check import check

    report = asyncio.run(check(*_databases(postgres), settle=settle))
    click.echo(json.dumps(report.as_dict(), indent=2, default=str))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    # `python -m groundwork_cli.load`: the chart's load-test Job, in an image
    # without the local runtime that the `groundwork` command imports.
    load()
