"""Booking through the real edge: seat prices fetched from catalog through
booking's sidecar (mTLS), one winner per seat, orders, and events relayed from
the outbox onto the booking stream."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_cli.runtime import probes
from tests import edge_flows
from tests.e2e.conftest import Mesh


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _hold(mesh: Mesh, token: str, event_id: str, seats: list[str]) -> httpx.Response:
    return httpx.post(
        f"{mesh.http}/v1/holds",
        headers=_auth(token),
        json={"event_id": event_id, "seat_ids": seats, "idempotency_key": f"hold-{uuid.uuid4()}"},
    )


def test_hold_order_and_list_through_the_edge(mesh: Mesh) -> None:
    events = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 3}).json()["events"]
    event_id = events[2]["event_id"]
    ann, bob = mesh.user_token(), mesh.user_token()
    assert httpx.post(f"{mesh.http}/v1/holds", json={}).status_code == 401

    held = _hold(mesh, ann, event_id, ["UPPER-R01-001", "UPPER-R01-002"])
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "HOLD_STATUS_ACTIVE"
    taken = _hold(mesh, bob, event_id, ["UPPER-R01-002"])
    assert taken.status_code == 400 and "UPPER-R01-002" in taken.json()["message"]

    order = httpx.post(
        f"{mesh.http}/v1/orders",
        headers=_auth(ann),
        json={"hold_id": held.json()["hold_id"], "idempotency_key": f"order-{uuid.uuid4()}"},
    )
    assert order.status_code == 200, order.text
    seats = httpx.get(f"{mesh.http}/v1/events/{event_id}/seats").json()["seats"]
    prices = {s["seat_id"]: int(s["price_cents"]) for s in seats}
    assert int(order.json()["amount_cents"]) == prices["UPPER-R01-001"] + prices["UPPER-R01-002"]
    order_id = order.json()["order_id"]
    mine = httpx.get(f"{mesh.http}/v1/orders", headers=_auth(ann)).json()["orders"]
    assert [o["order_id"] for o in mine] == [order_id]
    assert httpx.get(f"{mesh.http}/v1/orders/{order_id}", headers=_auth(bob)).status_code == 404


def test_a_flash_crowd_gets_one_winner_per_seat(mesh: Mesh) -> None:
    event_id = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 4}).json()["events"][3][
        "event_id"
    ]
    tokens = [mesh.user_token() for _ in range(10)]

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=mesh.http, timeout=20) as client:
            replies = await asyncio.gather(
                *(
                    client.post(
                        "/v1/holds",
                        headers=_auth(tokens[n % 10]),
                        json={
                            "event_id": event_id,
                            "seat_ids": ["FLOOR-R02-007"],
                            "idempotency_key": f"race-{uuid.uuid4()}",
                        },
                    )
                    for n in range(40)
                )
            )
        return [r.status_code for r in replies]

    codes = asyncio.run(race())
    assert codes.count(200) == 1 and codes.count(400) == 39, codes


def test_changes_are_published_on_the_booking_stream(mesh: Mesh) -> None:
    event_id = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 5}).json()["events"][4][
        "event_id"
    ]
    held = _hold(mesh, mesh.user_token(), event_id, ["LOWER-R03-003"])
    assert held.status_code == 200

    async def find() -> None:
        redis = Redis.from_url(mesh.plan.redis_url())
        try:
            entries: Any = await redis.xrange("booking")
        finally:
            await redis.aclose()
        types = {
            (Envelope.FromString(f[b"e"]).type, Envelope.FromString(f[b"e"]).aggregate_id)
            for _, f in entries
        }
        assert ("booking.seats_held", event_id) in types

    asyncio.run(probes.wait_until(find, 10, "the seats_held event on the stream"))


def _seat_becomes(mesh: Mesh, event_id: str, seat_id: str, status: str) -> None:
    """The catalog's public seat map follows booking's events (bus, then cache TTL)."""

    async def check() -> None:
        async with httpx.AsyncClient() as client:
            seats = (await client.get(f"{mesh.http}/v1/events/{event_id}/seats")).json()["seats"]
        assert next(s for s in seats if s["seat_id"] == seat_id)["status"] == status

    asyncio.run(probes.wait_until(check, 15, f"{seat_id} {status} in the seat map"))


def test_a_purchase_through_the_edge(mesh: Mesh) -> None:
    """Hold, order, a declined card, then a paid order: booking calls payments
    through its sidecar, and the sale is announced on the booking stream."""
    event_id = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 6}).json()["events"][5][
        "event_id"
    ]
    token = mesh.user_token()
    held = _hold(mesh, token, event_id, ["UPPER-R05-010"])
    assert held.status_code == 200, held.text
    _seat_becomes(mesh, event_id, "UPPER-R05-010", "SEAT_STATUS_HELD")
    order = httpx.post(
        f"{mesh.http}/v1/orders",
        headers=_auth(token),
        json={"hold_id": held.json()["hold_id"], "idempotency_key": f"order-{uuid.uuid4()}"},
    ).json()

    def pay(card: str, key: str) -> httpx.Response:
        return httpx.post(
            f"{mesh.http}/v1/orders/{order['order_id']}:pay",
            headers=_auth(token),
            json={"card_token": card, "idempotency_key": key},
            timeout=20,
        )

    declined = pay("tok_decline", f"pay-{uuid.uuid4()}")
    assert declined.status_code == 400 and "declined" in declined.json()["message"]
    key = f"pay-{uuid.uuid4()}"
    paid = pay("tok_approve", key)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "ORDER_STATUS_PAID"
    assert pay("tok_approve", key).json() == paid.json()  # a retry changes nothing
    _seat_becomes(mesh, event_id, "UPPER-R05-010", "SEAT_STATUS_SOLD")

    async def announced() -> None:
        redis = Redis.from_url(mesh.plan.redis_url())
        try:
            entries: Any = await redis.xrange("booking")
        finally:
            await redis.aclose()
        paid_ids = [
            Envelope.FromString(f[b"e"]).aggregate_id
            for _, f in entries
            if Envelope.FromString(f[b"e"]).type == "booking.order_paid"
        ]
        assert paid_ids.count(order["order_id"]) == 1

    asyncio.run(probes.wait_until(announced, 10, "the order_paid event"))

    async def ticketed() -> None:
        async with httpx.AsyncClient() as client:
            tickets = (await client.get(f"{mesh.http}/v1/tickets", headers=_auth(token))).json()
        assert [t["seat_id"] for t in tickets["tickets"]] == ["UPPER-R05-010"]

    asyncio.run(probes.wait_until(ticketed, 15, "the ticket"))
    claims = edge_flows.signed_ticket(mesh.http, token, order["order_id"])  # the public key only
    assert claims["seat"] == "UPPER-R05-010"
    other = mesh.user_token()
    assert httpx.get(f"{mesh.http}/v1/tickets", headers=_auth(other)).json()["tickets"] == []
