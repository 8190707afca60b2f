"""What an attacker tried against a fresh mesh, each kept as a regression: input
no store can hold answers 400 naming the field, internals never reach a client,
racing payments make one charge, bad content types are refused at the edge
without costing anyone an instance, and connections that never speak are closed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_cli.runtime.plan import service_database_url
from tests import edge_flows
from tests.e2e.conftest import Mesh, envoy_stat

NUL = "must not contain NUL (U+0000)"


def _violations(reply: httpx.Response) -> list[tuple[str, str]]:
    """google.rpc.BadRequest's field violations, as the edge renders the status."""
    assert reply.status_code == 400, reply.text
    details = reply.json()["details"]
    bad_request = next(d for d in details if d["@type"].endswith("google.rpc.BadRequest"))
    return [(v["field"], v["description"]) for v in bad_request["field_violations"]]


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _first_event(mesh: Mesh) -> dict[str, Any]:
    reply = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1})
    return dict(reply.json()["events"][0])


def test_nul_in_any_string_is_a_400_naming_the_field(mesh: Mesh) -> None:
    reply = httpx.get(f"{mesh.http}/v1/events", params={"city": "Ber\x00lin"})
    assert _violations(reply) == [("city", NUL)]
    for path in ("/v1/auth/signup", "/v1/auth/login"):
        reply = httpx.post(
            f"{mesh.http}{path}", json={"email": "a\x00@example.com", "password": "x" * 12}
        )
        assert ("email", NUL) in _violations(reply), path
    token = mesh.user_token()
    held = httpx.post(
        f"{mesh.http}/v1/holds",
        headers=_auth(token),
        json={
            "event_id": _first_event(mesh)["event_id"],
            "seat_ids": ["A-1\x00"],
            "idempotency_key": f"h-{uuid.uuid4()}",
        },
    )
    assert _violations(held) == [("seat_ids[0]", NUL)]
    created = httpx.post(
        f"{mesh.http}/v1/events",
        headers=_auth(mesh.admin_token()),
        json=edge_flows.event_body(
            mesh.http, "Null\x00Show", {"FLOOR": 100, "LOWER": 100, "UPPER": 100}
        ),
    )
    assert _violations(created) == [("name", NUL)]


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("GET", "/v1/events/%ff", False),
        ("GET", "/v1/events/%ff/seats", False),
        ("GET", "/v1/orders/%ff", True),
        ("POST", "/v1/orders/%ff:pay", True),
        ("POST", "/v1/holds/%ff:release", True),
        ("PATCH", "/v1/events/%ff", True),
    ],
)
def test_invalid_utf8_in_a_path_is_a_400_that_leaks_nothing(
    mesh: Mesh, method: str, path: str, authenticated: bool
) -> None:
    headers = _auth(mesh.admin_token()) if authenticated else {}
    body = {"card_token": "tok_approve", "idempotency_key": f"k-{uuid.uuid4()}"}
    reply = httpx.request(
        method,
        f"{mesh.http}{path}",
        headers=headers,
        json=body if method == "POST" else ({"name": "x"} if method == "PATCH" else None),
    )
    assert reply.status_code == 400, reply.text
    assert "DecodeError" not in reply.text and "Traceback" not in reply.text
    field = {"orders": "order_id", "holds": "hold_id"}.get(path.split("/")[2], "event_id")
    assert (field, "must be valid UTF-8") in _violations(reply)


def test_a_price_past_the_bound_is_refused(mesh: Mesh) -> None:
    prices = {"FLOOR": "9223372036854775807", "LOWER": 100, "UPPER": 100}
    reply = httpx.post(
        f"{mesh.http}/v1/events",
        headers=_auth(mesh.admin_token()),
        json=edge_flows.event_body(mesh.http, "Priceless", prices),
    )
    assert _violations(reply) == [("section_prices['FLOOR']", "0 to 100000000 cents")]


def test_concurrent_payments_of_one_order_make_one_charge(mesh: Mesh) -> None:
    token = mesh.user_token()
    events = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 3}).json()["events"]
    event_id = events[2]["event_id"]
    seat = edge_flows.available_seat(mesh.http, event_id)
    with httpx.Client(base_url=mesh.http, headers=_auth(token), timeout=20) as api:
        order = edge_flows.order(api, event_id, seat)

    key = uuid.uuid4()

    async def pay_five_ways() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=mesh.http, headers=_auth(token), timeout=20) as api:
            return await asyncio.gather(
                *(
                    api.post(
                        f"/v1/orders/{order['order_id']}:pay",
                        json={
                            "card_token": "tok_approve",
                            "idempotency_key": f"p-{n}-{key}",
                        },
                    )
                    for n in range(5)
                )
            )

    replies = asyncio.run(pay_five_ways())
    codes = [r.status_code for r in replies]
    assert set(codes) <= {200, 409}, [r.text for r in replies]
    assert 200 in codes
    for reply in replies:
        if reply.status_code == 200:
            assert reply.json()["status"] == "ORDER_STATUS_PAID"
        else:
            assert reply.json()["code"] == 10  # ABORTED: another pay got there first
    final = httpx.get(f"{mesh.http}/v1/orders/{order['order_id']}", headers=_auth(token))
    assert final.json()["status"] == "ORDER_STATUS_PAID"

    async def charges() -> int:
        conn = await asyncpg.connect(service_database_url(mesh.plan, "payments"))
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM charges WHERE order_id = $1 AND status = 'approved'",
                    order["order_id"],
                )
            )
        finally:
            await conn.close()

    assert asyncio.run(charges()) == 1


def test_a_grpc_path_without_a_grpc_content_type_is_415_and_ejects_nobody(mesh: Mesh) -> None:
    admin = mesh.plan.edge_admin()
    ejections = "cluster.catalog.outlier_detection.ejections_enforced_total"
    before = envoy_stat(admin, ejections)
    path = "/groundwork.catalog.v1.CatalogService/GetEvent"
    for content_type in ("text/plain", "application/json", ""):
        for _ in range(3):
            reply = httpx.post(
                f"{mesh.http}{path}",
                content=b"\x00\x00\x00\x00\x00",
                headers={"content-type": content_type} if content_type else {},
            )
            assert reply.status_code == 415, reply.text
            assert reply.headers["content-type"] == "application/json"
    # A gRPC content type with a body that is no gRPC message: the service's
    # refusal is an answer, not a failure to answer.
    for _ in range(6):
        reply = httpx.post(
            f"{mesh.http}{path}",
            content=b"not a grpc frame",
            headers={"content-type": "application/grpc", "te": "trailers"},
        )
        assert reply.status_code < 500, reply.text
    assert envoy_stat(admin, ejections) == before


def test_header_names_grpc_cannot_carry_are_dropped_at_the_edge(mesh: Mesh) -> None:
    """HTTP allows ` | & in a header name; gRPC metadata does not, and a service
    refused the whole call with a 500 (found by schemathesis)."""
    for name in ("fq`|knu", "k2d&n.z-si", "a!b", "x~y"):
        reply = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1}, headers={name: "1"})
        assert reply.status_code == 200, (name, reply.text)
        me = httpx.get(f"{mesh.http}/v1/me", headers={**_auth(mesh.user_token()), name: "1"})
        assert me.status_code == 200, (name, me.text)


def test_an_upgrade_on_a_plain_route_is_refused_at_once(mesh: Mesh) -> None:
    reply = httpx.get(
        f"{mesh.http}/v1/events",
        headers={"upgrade": "websocket", "connection": "upgrade"},
    )
    assert reply.status_code == 400
    assert reply.json()["message"] == "no upgrade is offered on this path"


def test_strict_transport_security_over_tls_only(mesh: Mesh) -> None:
    tls = httpx.get(f"{mesh.https}/v1/events", params={"page_size": 1}, verify=mesh.tls())
    assert tls.headers["strict-transport-security"] == "max-age=31536000"
    plain = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1})
    assert "strict-transport-security" not in plain.headers


def test_connections_that_never_speak_are_closed(mesh: Mesh) -> None:
    """Hundreds of TCP connections that send nothing (plain, and TLS without a
    ClientHello) are closed by the edge's idle and handshake timeouts, while
    legitimate requests keep being served."""
    edge = mesh.plan.mesh.edge
    silent: list[socket.socket] = []
    for target in (mesh.plan.edge_http(), mesh.plan.edge_https()):
        host, port = target.rsplit(":", 1)
        for _ in range(200):
            silent.append(socket.create_connection((host, int(port)), timeout=5))
    with httpx.Client(base_url=mesh.http) as client:
        assert client.get("/v1/events", params={"page_size": 1}).status_code == 200
    https = httpx.get(f"{mesh.https}/v1/events", params={"page_size": 1}, verify=mesh.tls())
    assert https.status_code == 200
    # Each read returns b"" (closed) or fails (reset) once the edge lets go; the
    # socket timeout is past the longest configured timeout, so a read that times
    # out means the edge held the connection too long.
    limit = max(edge.idle_timeout_seconds, edge.handshake_timeout_seconds) + 15
    for sock in silent:
        sock.settimeout(limit)
        try:
            assert sock.recv(1) == b""
        except ConnectionResetError:
            pass
        finally:
            sock.close()


def test_a_frozen_redis_costs_a_read_a_bounded_wait(mesh: Mesh) -> None:
    """SIGSTOP, not a kill: the connections stay open and never answer. Catalog's
    cache timeout (0.5 s) sends the read to Postgres; an uncached native gRPC read
    through the edge still answers within the client's deadline (it waited out
    the client's socket timeout, 5 s a command, before)."""
    event_id = _first_event(mesh)["event_id"]
    pid = _pid(mesh, "redis")
    os.kill(pid, signal.SIGSTOP)
    try:
        with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            for _ in range(3):
                event = stub.GetEvent(pb.GetEventRequest(event_id=event_id), timeout=4)
                assert event.event_id == event_id
    finally:
        os.kill(pid, signal.SIGCONT)


def _pid(mesh: Mesh, name: str) -> int:
    from groundwork_cli.runtime import supervisor

    info = supervisor.client(mesh.plan.layout).getProcessInfo(name)
    return int(info["pid"])
