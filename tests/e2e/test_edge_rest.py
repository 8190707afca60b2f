"""REST through the real edge: HTTP/1.1, h2c, TLS with HTTP/1.1 and HTTP/2,
JSON errors for bad input, unknown events and unknown routes."""

from __future__ import annotations

import re
import ssl
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from groundwork_cli.runtime.secrets import ADMIN_EMAIL
from tests import edge_flows
from tests.e2e.conftest import Mesh


def _events(reply: httpx.Response) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    return list(reply.json()["events"])


def test_list_events_over_http11(mesh: Mesh) -> None:
    with httpx.Client(base_url=mesh.http) as client:
        reply = client.get("/v1/events")
    assert reply.http_version == "HTTP/1.1"
    events = _events(reply)
    assert len(events) == 20  # the default page
    assert {"event_id", "name", "venue", "starts_at", "seats_available"} <= set(events[0])


def test_list_events_over_h2c(mesh: Mesh) -> None:
    with httpx.Client(base_url=mesh.http, http1=False, http2=True) as client:
        reply = client.get("/v1/events", params={"page_size": 3})
    assert reply.http_version == "HTTP/2"
    assert len(_events(reply)) == 3


@pytest.mark.parametrize(("http2", "version"), [(False, "HTTP/1.1"), (True, "HTTP/2")])
def test_tls_with_alpn(mesh: Mesh, http2: bool, version: str) -> None:
    with httpx.Client(base_url=mesh.https, verify=mesh.tls(), http2=http2) as client:
        reply = client.get("/v1/events", params={"city": "Lisbon"})
    assert reply.http_version == version
    assert all(e["venue"]["city"] == "Lisbon" for e in _events(reply))


def test_tls_below_1_2_is_refused(mesh: Mesh) -> None:
    context = mesh.tls()
    # Let the client offer TLS 1.0/1.1 (OpenSSL refuses them by default), so a refusal
    # can only come from the edge.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        httpx.Client(base_url=mesh.https, verify=context) as client,
        pytest.raises(httpx.ConnectError, match=r"(?i)protocol version|alert"),
    ):
        client.get("/v1/events")


def test_pagination_through_the_edge_reaches_every_event(mesh: Mesh) -> None:
    ids: list[str] = []
    params: dict[str, Any] = {"page_size": 10}
    with httpx.Client(base_url=mesh.http) as client:
        while True:
            body = client.get("/v1/events", params=params).json()
            ids += [e["event_id"] for e in body["events"]]
            if not body["next_page_token"]:
                break
            params["page_token"] = body["next_page_token"]
    assert len(ids) == len(set(ids)) >= 20


def test_event_and_seat_map(mesh: Mesh) -> None:
    with httpx.Client(base_url=mesh.http) as client:
        event = _events(client.get("/v1/events", params={"page_size": 1}))[0]
        one = client.get(f"/v1/events/{event['event_id']}").json()
        seats = client.get(f"/v1/events/{event['event_id']}/seats").json()
    assert one == event
    # Other tests (and the demo) buy seats: count, do not assume all are free.
    assert len(seats["seats"]) == event["venue"]["capacity"]
    assert seats["available"] + seats["held"] + seats["sold"] == len(seats["seats"])
    statuses = [s["status"] for s in seats["seats"]]
    assert statuses.count("SEAT_STATUS_AVAILABLE") == seats["available"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/events", {"page_size": "abc"}, "page_size"),
        ("/v1/events", {"page_size": 1000}, "page_size"),
        ("/v1/events", {"page_token": "forged"}, "page_token"),
        ("/v1/events", {"starts_after": "yesterday"}, "starts_after"),
        ("/v1/events", {"unknown": "1"}, "unknown"),
        ("/v1/events/not-a-uuid", {}, "event_id"),
        ("/v1/events/42/seats", {}, "event_id"),
    ],
)
def test_bad_input_is_a_400_json_error(
    mesh: Mesh, path: str, params: dict[str, Any], field: str
) -> None:
    reply = httpx.get(mesh.http + path, params=params)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert field in reply.json()["message"]


def test_unknown_event_is_a_404_json_error(mesh: Mesh) -> None:
    reply = httpx.get(f"{mesh.http}/v1/events/00000000-0000-4000-8000-000000000000")
    assert reply.status_code == 404
    assert reply.json()["code"] == 5  # google.rpc.Code.NOT_FOUND
    assert "not found" in reply.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),
        ("GET", "/index.php"),
        ("GET", "/v2/events"),
        ("DELETE", "/v1/events"),
        ("GET", "/admin"),
    ],
)
def test_unknown_routes_are_404_json(mesh: Mesh, method: str, path: str) -> None:
    reply = httpx.request(method, mesh.http + path)
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["reason"] == "route_not_found"


@dataclass(frozen=True)
class Reads:
    """Every GET in the API document, its ids filled in with things that exist
    (an event with a room the caller joined, an order of the caller's)."""

    headers: dict[str, str]  # the caller's (an admin, so every read answers 200)
    paths: dict[str, str]  # the concrete path -> its template in the document
    public: set[str]  # the templates whose GET needs no token


@pytest.fixture(scope="module")
def reads(mesh: Mesh) -> Reads:
    admin = {"authorization": f"Bearer {mesh.admin_token()}"}
    event_id = edge_flows.new_event(mesh.http, mesh.admin_token())
    edge_flows.create_room(mesh.http, mesh.admin_token(), event_id)
    edge_flows.join(mesh.http, mesh.admin_token(), event_id)
    free = edge_flows.new_event(mesh.http, mesh.admin_token())
    with httpx.Client(base_url=mesh.http, headers=admin, timeout=20) as api:
        order = edge_flows.order(api, free, edge_flows.available_seat(mesh.http, free))
    layout = httpx.get(f"{mesh.http}/v1/events/{event_id}/layout").json()["layout_version"]
    values = {"event_id": event_id, "order_id": order["order_id"], "layout_version": layout}
    gets = {
        template: item["get"]
        for template, item in httpx.get(f"{mesh.http}/openapi.json").json()["paths"].items()
        if "get" in item
    }
    return Reads(
        admin,
        {re.sub(r"\{([^}]+)\}", lambda m: str(values[m[1]]), t): t for t in gets},
        {t for t, operation in gets.items() if operation.get("security") == []},
    )


def test_head_answers_every_get_with_the_same_status_and_no_body(mesh: Mesh, reads: Reads) -> None:
    """RFC 9110 §9.3.2: HEAD is GET without the content. Every read, public or not."""
    headers = reads.headers | {"accept-encoding": "identity"}
    statuses = {}
    for path in reads.paths:
        got = httpx.get(mesh.http + path, headers=headers)
        head = httpx.head(mesh.http + path, headers=headers)
        assert head.status_code == got.status_code, (path, got.status_code, head.status_code)
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        statuses[path] = got.status_code
    assert set(statuses.values()) == {200}, statuses


def test_a_callers_own_answers_are_private_and_never_stored(mesh: Mesh, reads: Reads) -> None:
    assert reads.public and len(reads.public) < len(reads.paths)
    login = httpx.post(
        f"{mesh.http}/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": mesh.admin_password()},
    )
    assert login.headers["cache-control"] == "private, no-store"
    for path, template in reads.paths.items():
        reply = httpx.get(mesh.http + path, headers=reads.headers)
        if template in reads.public:
            assert "no-store" not in reply.headers.get("cache-control", ""), path
        else:
            assert reply.headers["cache-control"] == "private, no-store", path
