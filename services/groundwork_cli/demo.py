"""`groundwork demo`: a few real requests through the edge, printed."""

from __future__ import annotations

import json
from typing import Any

import click
import grpc
import httpx

from groundwork.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from groundwork_cli.runtime.plan import Plan


def _show(title: str, reply: httpx.Response, body: Any) -> None:
    click.secho(f"\n$ {reply.request.method} {reply.request.url}  [{title}]", bold=True)
    served_by = reply.headers.get("x-groundwork-instance", "-")
    click.echo(f"{reply.http_version} {reply.status_code}   served by {served_by}")
    click.echo(json.dumps(body, indent=2, ensure_ascii=False)[:1200])


def run_demo(plan: Plan) -> int:
    base = f"http://{plan.edge_http()}"
    tls = f"https://localhost:{plan.mesh.edge.https}"
    with httpx.Client(base_url=base, timeout=10) as http:
        reply = http.get("/v1/events", params={"page_size": 3, "city": "Berlin"})
        page = reply.json()
        _show("REST over HTTP/1.1, transcoded to gRPC by the edge", reply, page)
        if reply.status_code != 200 or not page.get("events"):
            click.echo("no events: is the mesh up and seeded?")
            return 1
        event = page["events"][0]

        reply = http.get("/v1/events/not-a-uuid")
        _show("bad input gets a JSON error", reply, reply.json())

    ca = str(plan.layout.pki / "ca.crt")
    # TLS to the edge: the certificate names localhost, so connect by name to its address.
    transport = httpx.HTTPTransport(http2=True, verify=ca)
    with httpx.Client(http2=True, verify=ca, timeout=10, transport=transport) as https:
        if plan.profile.edge_address() != "127.0.0.1":
            tls = f"https://{plan.edge_https()}"
        reply = https.get(f"{tls}/v1/events/{event['event_id']}/seats")
        seats = reply.json()
        summary = {k: seats[k] for k in ("event_id", "available", "held", "sold")}
        summary["first_seats"] = seats["seats"][:2]
        _show("REST over HTTP/2 and TLS (ALPN h2)", reply, summary)

    with grpc.insecure_channel(plan.edge_http()) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        response, call = stub.ListEvents.with_call(
            catalog_pb2.ListEventsRequest(page_size=5), timeout=10
        )
        served = str(dict(call.initial_metadata()).get("x-groundwork-instance", "-"))
        click.secho(
            f"\n$ grpc {plan.edge_http()} groundwork.catalog.v1.CatalogService/ListEvents"
            "  [native gRPC through the same edge port]",
            bold=True,
        )
        click.echo(f"{len(response.events)} events, served by {served}:")
        for e in response.events:
            click.echo(f"  {e.starts_at.ToDatetime():%Y-%m-%d %H:%M}  {e.venue.city:<11} {e.name}")
    click.echo(
        "\nstop the mesh with:  .venv/bin/groundwork down   (add --purge to delete its data)"
    )
    return 0
