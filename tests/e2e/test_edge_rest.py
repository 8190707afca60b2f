"""REST through the real edge: HTTP/1.1, h2c, TLS with HTTP/1.1 and HTTP/2,
JSON errors for bad input, unknown events and unknown routes."""

from __future__ import annotations

import ssl
import warnings
from typing import Any

import httpx
import pytest

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
