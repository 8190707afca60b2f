"""`groundwork demo`: a few real requests through the edge, printed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
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
    ws_url = f"ws://{plan.edge_http()}/v1/live/events/{event['event_id']}/seats"
    position = asyncio.run(_live_frames(ws_url))[-1]["id"]
    if not _purchase(base, event["event_id"]):
        return 1
    # Reconnect from the position held before the purchase: the missed updates replay.
    frames = asyncio.run(_live_frames(f"{ws_url}?last_event_id={position}"))
    click.secho(
        f"\n$ websocket {ws_url}?last_event_id={position}"
        "  [live seat map through the edge, resumed: what happened since]",
        bold=True,
    )
    for frame in frames:
        click.echo(json.dumps(frame, ensure_ascii=False))
    click.secho(
        f"\nthe sale in a browser (events, live seat map, queue, tickets):  {base}/", bold=True
    )
    click.echo("stop the mesh with:  .venv/bin/groundwork down   (add --purge to delete its data)")
    return 0


async def _live_frames(url: str) -> list[dict[str, Any]]:
    """The frames a WebSocket receives up to and including `ready`."""
    frames: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        while not frames or "ready" not in frames[-1]:
            frames.append(json.loads((await ws.receive(timeout=10)).data))
    return frames


def _purchase(base: str, event_id: str) -> bool:
    """Sign up, hold a seat, order, pay, and wait for the ticket: the whole path."""
    email, password = f"demo-{uuid.uuid4().hex[:8]}@example.com", "demo password 1234"
    with httpx.Client(base_url=base, timeout=20) as http:
        http.post("/v1/auth/signup", json={"email": email, "password": password})
        tokens = http.post("/v1/auth/login", json={"email": email, "password": password}).json()
        auth = {"authorization": f"Bearer {tokens['access_token']}"}
        seats = http.get(f"/v1/events/{event_id}/seats").json()["seats"]
        seat = next(s["seat_id"] for s in seats if s["status"] == "SEAT_STATUS_AVAILABLE")
        reply = http.post(
            "/v1/holds",
            headers=auth,
            json={"event_id": event_id, "seat_ids": [seat], "idempotency_key": f"h-{uuid.uuid4()}"},
        )
        _show("a purchase: hold (authenticated, per-user rate limited)", reply, reply.json())
        if reply.status_code != 200:
            return False
        reply = http.post(
            "/v1/orders",
            headers=auth,
            json={"hold_id": reply.json()["hold_id"], "idempotency_key": f"o-{uuid.uuid4()}"},
        )
        _show("a purchase: order from the hold", reply, reply.json())
        order_id = reply.json()["order_id"]
        reply = http.post(
            f"/v1/orders/{order_id}:pay",
            headers=auth,
            json={"card_token": "tok_approve", "idempotency_key": f"p-{uuid.uuid4()}"},
        )
        _show("a purchase: pay (booking -> payments through the mesh)", reply, reply.json())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            tickets = http.get("/v1/tickets", headers=auth).json()["tickets"]
            if tickets:
                ticket = {**tickets[0], "token": tickets[0]["token"][:40] + "..."}
                click.secho(
                    "\n$ GET /v1/tickets  [issued by the ticketing worker from the "
                    "bus, signed, verifiable offline]",
                    bold=True,
                )
                click.echo(json.dumps(ticket, indent=2))
                return True
            time.sleep(0.3)
    click.echo("no ticket within 15 s: see `groundwork logs ticketing-0`")
    return False
