"""`groundwork load`: one scenario headless, its figures as JSON beside Locust's HTML
report, then the correctness check. Locust runs in a subprocess (it patches the
standard library with gevent on import), bounded by the run's own time limit."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from groundwork_loadtest import check, results

LOCUSTFILES = Path(__file__).parent / "locustfiles"
SCENARIOS = {
    "browse": "browse.py",
    "buy": "buy.py",
    "flash-sale": "flash_sale.py",
    "grpc": "grpc_reads.py",
    "reads": "reads.py",
}
# The same read over REST (through the edge's transcoder) and native gRPC.
SAME_READS = {
    "ListEvents": "/v1/events",
    "GetEvent": "/v1/events/:id",
    "GetSeatMap": "/v1/events/:id/seats",
}
# Past the run time: Locust's stop timeout, report writing, a slow start.
SLACK_SECONDS = 90


class LoadError(Exception):
    pass


@dataclass(frozen=True)
class Databases:
    booking: str
    ticketing: str


@dataclass(frozen=True)
class Run:
    scenario: str
    host: str
    out: Path
    users: int = 20
    spawn_rate: float = 10
    duration: str = "30s"
    workers: int = 0
    event_id: str = ""
    ticket_wait: str = "poll"
    accounts: int = 200
    think: float = 2.0
    flash_users: int = 2000
    flash_ramp: float = 10
    flash_hold: float = 20
    databases: Databases | None = None  # None: no correctness check
    settle: float = 30
    # Flash sale: customers' accounts kept here between runs (None: sign up in the run).
    accounts_store: Path | None = None
    # Flash sale: put the event behind a waiting room with these settings (needs an
    # admin token), or join the room it already has.
    room: dict[str, Any] | None = None
    admin_token: str = ""
    # Flash sale: customers' access tokens made beforehand by the caller (instead
    # of accounts_store), with how they were made.
    tokens: list[str] | None = None
    tokens_made: dict[str, Any] | None = None


def seconds(duration: str) -> float:
    """Locust's run-time syntax: 90, 30s, 2m, 1h30m."""
    text = duration.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or not parts:
        raise LoadError(f"bad duration {duration!r}: use e.g. 45s, 2m or 1h30m")
    hours, minutes, secs = (int(p or 0) for p in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def busiest_event(host: str) -> str:
    """The listed event with the most seats left: the flash sale's default target."""
    reply = httpx.get(f"{host}/v1/events", params={"page_size": 100}, timeout=10)
    reply.raise_for_status()
    events = reply.json().get("events", [])
    if not events:
        raise LoadError(f"{host} lists no events to sell")
    best = max(events, key=lambda e: int(e.get("seats_available", 0)))
    return str(best["event_id"])


def new_event(host: str, admin_token: str, name: str, venue: str = "largest") -> str:
    """A new event (admin API) on the listed venue with the most seats, or the
    fewest; far in the future, after every seeded one."""
    reply = httpx.get(f"{host}/v1/events", params={"page_size": 100}, timeout=10)
    reply.raise_for_status()
    venues = [e["venue"] for e in reply.json()["events"]]
    pick = max if venue == "largest" else min
    chosen = pick(venues, key=lambda v: (v["capacity"], v["venue_id"]))
    created = httpx.post(
        f"{host}/v1/events",
        headers={"authorization": f"Bearer {admin_token}"},
        json={
            "venue_id": chosen["venue_id"],
            "name": name,
            "starts_at": (datetime.now(UTC) + timedelta(days=3650)).isoformat(),
            "section_prices": {"FLOOR": 9900, "LOWER": 6900, "UPPER": 3900},
            "idempotency_key": f"event-{uuid.uuid4()}",
        },
        timeout=30,
    )
    if created.status_code != 200:
        raise LoadError(f"cannot create an event: {created.status_code} {created.text}")
    return str(created.json()["event_id"])


def locust_command(run: Run) -> list[str]:
    if run.scenario not in SCENARIOS:
        raise LoadError(f"unknown scenario {run.scenario!r}: one of {', '.join(SCENARIOS)}")
    prefix = run.out / "locust"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILES / SCENARIOS[run.scenario]),
        "--headless",
        "--host",
        run.host,
        "--csv",
        str(prefix),
        "--html",
        str(run.out / "report.html"),
        "--json-file",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
        "--ticket-wait",
        run.ticket_wait,
        "--accounts",
        str(run.accounts),
        "--think",
        str(run.think),
    ]
    if run.event_id:
        command += ["--event-id", run.event_id]
    if run.scenario == "flash-sale" and (run.accounts_store is not None or run.tokens):
        command += ["--tokens-file", str(run.out / "tokens.json")]
    if run.scenario == "flash-sale" and run.room is not None:
        command += ["--waiting-room"]
    if run.scenario == "flash-sale":
        # The shape sets users and rate; the run time only bounds it.
        limit = run.flash_ramp + run.flash_hold + 30
        command += [
            "--flash-users",
            str(run.flash_users),
            "--flash-ramp",
            str(run.flash_ramp),
            "--flash-hold",
            str(run.flash_hold),
            "--run-time",
            f"{int(limit)}s",
        ]
    else:
        command += ["-u", str(run.users), "-r", str(run.spawn_rate), "--run-time", run.duration]
    if run.workers:
        command += ["--processes", str(run.workers)]
    return command


def _limit(run: Run) -> float:
    if run.scenario == "flash-sale":
        return run.flash_ramp + run.flash_hold + 30 + SLACK_SECONDS
    return seconds(run.duration) + SLACK_SECONDS


def ensure_room(run: Run) -> dict[str, Any]:
    """The event's waiting room: created with `run.room`'s settings, or, when it has
    one already, updated to them (a rerun keeps its queue)."""
    auth = {"authorization": f"Bearer {run.admin_token}"}
    settings = {k: v for k, v in (run.room or {}).items() if k != "event_id"}
    with httpx.Client(base_url=run.host, headers=auth, timeout=10) as api:
        created = api.post("/v1/rooms", json={"event_id": run.event_id, **settings})
        if created.status_code == 409:
            created = api.patch(f"/v1/rooms/{run.event_id}", json=settings)
        if created.status_code != 200:
            raise LoadError(f"cannot set up the waiting room: {created.status_code} {created.text}")
        return dict(created.json())


def _prepare(run: Run) -> dict[str, Any]:
    """Customers logged in before the timed part; their tokens for Locust."""
    from groundwork_loadtest.accounts import prepare

    assert run.accounts_store is not None
    prepared = prepare(run.host, run.flash_users, run.accounts_store)
    if prepared.failures:
        raise LoadError("preparing customers failed: " + "; ".join(prepared.failures[:5]))
    (run.out / "tokens.json").write_text(json.dumps(prepared.tokens))
    return {
        "customers": len(prepared.tokens),
        "seconds": round(prepared.seconds, 1),
        "refreshed": prepared.refreshed,
        "logged_in": prepared.logged_in,
        "signed_up": prepared.signed_up,
    }


def execute(run: Run) -> dict[str, Any]:
    """Run the scenario and the check; returns (and writes) the result document."""
    run.out.mkdir(parents=True, exist_ok=True)
    if run.scenario == "flash-sale" and not run.event_id:
        run = Run(**{**run.__dict__, "event_id": busiest_event(run.host)})
    preparation = None
    if run.scenario == "flash-sale" and run.tokens:
        (run.out / "tokens.json").write_text(json.dumps(run.tokens))
        preparation = {"customers": len(run.tokens), **(run.tokens_made or {})}
    elif run.scenario == "flash-sale" and run.accounts_store is not None:
        preparation = _prepare(run)
    room = ensure_room(run) if run.scenario == "flash-sale" and run.room is not None else None
    command = locust_command(run)
    log = run.out / "locust.log"
    with log.open("w") as output:
        try:
            finished = subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT, timeout=_limit(run)
            )
        except subprocess.TimeoutExpired as error:
            raise LoadError(f"locust did not finish in {_limit(run):.0f}s; see {log}") from error
    stats_file = run.out / "locust.json"
    if not stats_file.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise LoadError(f"locust exited {finished.returncode} without results:\n{tail}")
    figures = results.summarize(json.loads(stats_file.read_text()), run.out / "locust_failures.csv")
    document: dict[str, Any] = {
        "scenario": run.scenario,
        "host": run.host,
        "options": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in run.__dict__.items()
            if k not in ("out", "databases", "host", "admin_token", "tokens")
        },
        **figures,
        "html_report": str(run.out / "report.html"),
    }
    if run.scenario == "reads":
        document["grpc_vs_rest"] = compare(figures["requests"])
    if run.scenario == "flash-sale":
        document["sale"] = sale_figures(run, figures, preparation, room)
    if run.databases:
        report = asyncio.run(
            check.check(run.databases.booking, run.databases.ticketing, run.settle)
        )
        document["correctness"] = report.as_dict()
    document["ok"] = (
        figures["total"]["failures"] == 0
        and all(o["failures"] == 0 for o in figures["outcomes"].values())
        and document.get("correctness", {"ok": True})["ok"]
    )
    (run.out / "result.json").write_text(json.dumps(document, indent=2) + "\n")
    return document


def sale_figures(
    run: Run,
    figures: dict[str, Any],
    preparation: dict[str, Any] | None,
    room: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the sale did: seats sold of how many, how fast it sold out, how long
    customers queued, how many races were lost."""
    outcomes = figures["outcomes"]
    seats = httpx.get(f"{run.host}/v1/events/{run.event_id}/availability", timeout=10).json()
    sold_out = outcomes.get("sold out")
    queued = outcomes.get("time in queue")
    sale: dict[str, Any] = {
        "event_id": run.event_id,
        "seats": int(seats["seat_count"]),
        "seats_sold": int(seats["sold"]),
        "seats_available": int(seats["available"]),
        "lost_races": outcomes.get("hold lost race", {}).get("count", 0),
        # The first customer to find nothing left, seconds after the sale began.
        "sold_out_after_seconds": round(sold_out["min_ms"] / 1000, 1) if sold_out else None,
        "time_in_queue_ms": (
            {k: queued[k] for k in ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms")}
            if queued
            else None
        ),
        "preparation": preparation,
        "waiting_room": room,
    }
    return sale


def compare(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Native gRPC against REST for each read and in all: throughput ratio (gRPC /
    REST) and both medians, from one run with as many users on each."""
    by_name = {(r["kind"], r["name"]): r for r in requests}
    result: dict[str, Any] = {}
    totals = {"grpc": 0.0, "rest": 0.0}
    for method, path in SAME_READS.items():
        grpc_row, rest_row = by_name.get(("grpc", method)), by_name.get(("GET", path))
        if not grpc_row or not rest_row:
            continue
        totals["grpc"] += grpc_row["per_second"]
        totals["rest"] += rest_row["per_second"]
        result[method] = {
            "grpc_per_second": grpc_row["per_second"],
            "rest_per_second": rest_row["per_second"],
            "throughput_ratio": _ratio(grpc_row["per_second"], rest_row["per_second"]),
            "grpc_p50_ms": grpc_row["p50_ms"],
            "rest_p50_ms": rest_row["p50_ms"],
        }
    result["all reads"] = {
        "grpc_per_second": round(totals["grpc"], 2),
        "rest_per_second": round(totals["rest"], 2),
        "throughput_ratio": _ratio(totals["grpc"], totals["rest"]),
    }
    return result


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def table(document: dict[str, Any]) -> str:
    """The result as a person reads it."""
    lines = [
        f"{document['scenario']} against {document['host']}: {document['seconds']}s",
        f"{'REQUEST':<34}{'COUNT':>8}{'FAIL':>6}{'REQ/S':>9}{'P50':>8}{'P95':>8}{'P99':>8}",
    ]
    for row in [*document["requests"], document["total"]]:
        label = f"{row['kind']} {row['name']}".strip()
        lines.append(
            f"{label[:33]:<34}{row['requests']:>8}{row['failures']:>6}{row['per_second']:>9}"
            f"{row['p50_ms']:>8.0f}{row['p95_ms']:>8.0f}{row['p99_ms']:>8.0f}"
        )
    for name, outcome in sorted(document["outcomes"].items()):
        lines.append(f"  outcome {name}: {outcome['count']} (failed {outcome['failures']})")
    for failure in document["failures"]:
        lines.append(
            f"  FAILED {failure['method']} {failure['name']} x{failure['occurrences']}: "
            f"{failure['error'][:160]}"
        )
    for read, row in document.get("grpc_vs_rest", {}).items():
        lines.append(
            f"  gRPC/REST {read}: {row['throughput_ratio']}x throughput "
            f"({row['grpc_per_second']} vs {row['rest_per_second']} req/s)"
        )
    sale = document.get("sale")
    if sale:
        prepared = sale["preparation"]
        if prepared:
            lines.append(f"customers prepared before the sale: {prepared}")
        queue = sale["time_in_queue_ms"]
        after = sale["sold_out_after_seconds"]
        lines.append(
            f"sale: {sale['seats_sold']} of {sale['seats']} seats sold, "
            f"{sale['lost_races']} lost races, sold out after "
            f"{'-' if after is None else after}s"
            + (
                f"; time in queue p50 {queue['p50_ms'] / 1000:.1f}s, "
                f"p99 {queue['p99_ms'] / 1000:.1f}s, max {queue['max_ms'] / 1000:.1f}s"
                if queue
                else ""
            )
        )
    correctness = document.get("correctness")
    if correctness is None:
        lines.append("correctness: not checked (no database given)")
    elif correctness["ok"]:
        lines.append(
            f"correctness: ok ({correctness['paid_orders']} paid orders, "
            f"{correctness['tickets']} tickets, no seat sold twice)"
        )
    else:
        lines.append(f"correctness: {len(correctness['violations'])} VIOLATIONS")
        lines += [f"  {v}" for v in correctness["violations"][:20]]
    lines.append("result: ok" if document["ok"] else "result: FAILED")
    return "\n".join(lines)
