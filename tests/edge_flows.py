"""What a client does through the edge, over REST: sign up, buy a seat, queue. Shared by
the local mesh's tests and the Kubernetes test against a real cluster."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import jwt

from groundwork.booking.v1 import booking_pb2, booking_pb2_grpc
from groundwork_loadtest import runner

PASSWORD = "correct horse battery staple"


def login(http: str, email: str, password: str) -> dict[str, Any]:
    reply = httpx.post(f"{http}/v1/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def new_user_token(http: str) -> str:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    reply = httpx.post(f"{http}/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return str(login(http, email, PASSWORD)["access_token"])


def order(api: httpx.Client, event_id: str, seat: str) -> dict[str, Any]:
    """Hold one seat and order it, with the caller's client (base URL and token)."""
    held = api.post(
        "/v1/holds",
        json={"event_id": event_id, "seat_ids": [seat], "idempotency_key": f"h-{uuid.uuid4()}"},
    )
    assert held.status_code == 200, held.text
    ordered = api.post(
        "/v1/orders",
        json={"hold_id": held.json()["hold_id"], "idempotency_key": f"o-{uuid.uuid4()}"},
    )
    assert ordered.status_code == 200, ordered.text
    return dict(ordered.json())


def purchase(http: str, token: str, event_index: int, seat: str) -> tuple[str, str]:
    """Hold, order and pay; returns (pay's trace id, order id)."""
    events = httpx.get(f"{http}/v1/events", params={"page_size": event_index + 1})
    event_id = events.json()["events"][event_index]["event_id"]
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=http, headers=auth, timeout=20) as api:
        order_ = order(api, event_id, seat)
        paid = api.post(
            f"/v1/orders/{order_['order_id']}:pay",
            json={"card_token": "tok_approve", "idempotency_key": f"p-{uuid.uuid4()}"},
        )
        assert paid.status_code == 200, paid.text
    trace_id = paid.headers["x-groundwork-trace-id"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    return trace_id, str(order_["order_id"])


def grpc_purchase(target: str, token: str, event_id: str, seat: str) -> booking_pb2.Order:
    """Hold, order and pay over native gRPC through the edge (h2c on `target`)."""
    auth = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(target) as channel:
        booking = booking_pb2_grpc.BookingServiceStub(channel)
        hold = booking.HoldSeats(
            booking_pb2.HoldSeatsRequest(
                event_id=event_id, seat_ids=[seat], idempotency_key=f"h-{uuid.uuid4()}"
            ),
            metadata=auth,
            timeout=20,
        )
        order = booking.CreateOrder(
            booking_pb2.CreateOrderRequest(
                hold_id=hold.hold_id, idempotency_key=f"o-{uuid.uuid4()}"
            ),
            metadata=auth,
            timeout=20,
        )
        paid: booking_pb2.Order = booking.PayOrder(
            booking_pb2.PayOrderRequest(
                order_id=order.order_id,
                card_token="tok_approve",
                idempotency_key=f"p-{uuid.uuid4()}",
            ),
            metadata=auth,
            timeout=20,
        )
    return paid


def available_seat(http: str, event_id: str, nth: int = 0) -> str:
    """The `nth` seat still available, counted from the end of the map (where the
    seeded flows do not buy)."""
    reply = httpx.get(f"{http}/v1/events/{event_id}/seats")
    assert reply.status_code == 200, (reply.status_code, reply.text[:200])
    seats = reply.json()["seats"]
    free = [s["seat_id"] for s in reversed(seats) if s["status"] == "SEAT_STATUS_AVAILABLE"]
    return str(free[nth])


def signed_ticket(http: str, token: str, order_id: str) -> dict[str, Any]:
    """The ticket of a paid order (issued from the bus, so perhaps not yet: an
    AssertionError until it is), its token verified offline with the public key."""
    auth = {"authorization": f"Bearer {token}"}
    listed = httpx.get(f"{http}/v1/tickets", headers=auth)
    assert listed.status_code == 200, listed.text  # 503 while the mesh converges
    mine = [t for t in listed.json().get("tickets", []) if t.get("order_id") == order_id]
    assert mine, listed.text
    published = httpx.get(f"{http}/v1/tickets/keys")
    assert published.status_code == 200, published.text
    keys = published.json()["keys"]
    claims = jwt.decode(
        mine[0]["token"], jwt.PyJWK(keys[0]), algorithms=["EdDSA"], issuer="groundwork-ticketing"
    )
    assert claims["order"] == order_id
    return dict(claims)


def new_event(http: str, admin_token: str, name: str = "On Sale") -> str:
    """A new event on the smallest venue, after every seeded one (so tests that
    pick events by index or size never pick it)."""
    return runner.new_event(http, admin_token, name, venue="smallest")


def event_body(http: str, name: str, section_prices: dict[str, Any]) -> dict[str, Any]:
    """A CreateEvent body on the first listed event's venue, a month ahead, with a
    fresh idempotency key."""
    first = httpx.get(f"{http}/v1/events", params={"page_size": 1}).json()["events"][0]
    return {
        "venue_id": first["venue"]["venue_id"],
        "name": name,
        "starts_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "section_prices": section_prices,
        "idempotency_key": f"create-{uuid.uuid4()}",
    }


def create_room(http: str, admin_token: str, event_id: str, **settings: Any) -> dict[str, Any]:
    reply = httpx.post(
        f"{http}/v1/rooms",
        headers={"authorization": f"Bearer {admin_token}"},
        json={"event_id": event_id, **settings},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def join(http: str, token: str, event_id: str) -> dict[str, Any]:
    reply = httpx.post(
        f"{http}/v1/events/{event_id}/queue",
        headers={"authorization": f"Bearer {token}"},
        json={},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def ticket(http: str, token: str, event_id: str) -> dict[str, Any]:
    reply = httpx.get(
        f"{http}/v1/events/{event_id}/queue", headers={"authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


CONSUMER = 5  # OTLP span kind


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    span_id: str
    parent_id: str
    attributes: dict[str, str]


def trace_spans(document: dict[str, Any]) -> list[Span]:
    """Spans of a Jaeger api/v3 reply (OTLP JSON: resource spans by service)."""
    found = []
    for resource in document["result"]["resourceSpans"]:
        attributes = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
        service = attributes["service.name"]["stringValue"]
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                found.append(
                    Span(
                        service,
                        span["name"],
                        int(span.get("kind", 0)),
                        span["spanId"],
                        span.get("parentSpanId", ""),
                        {
                            a["key"]: str(next(iter(a["value"].values()), ""))
                            for a in span.get("attributes", [])
                        },
                    )
                )
    return found
