"""The waiting room through the real edge: a queued event's holds need an
admission token the edge verifies (a customer who skips the queue never gets a
hold), customers are admitted in order with a token bound to them and the
event, progress arrives on the WebSocket, places survive both instances
restarting, and the adaptive rate falls when booking slows down."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import aiohttp
import grpc
import httpx
import pytest

from groundwork.booking.v1 import booking_pb2, booking_pb2_grpc
from groundwork_cli.runtime import policies, supervisor
from tests import edge_flows
from tests.conftest import eventually
from tests.e2e.conftest import Mesh
from tests.live import frame, until_ready

HEADER = "x-groundwork-admission"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _hold(mesh: Mesh, token: str, event_id: str, seat: str, admission: str = "") -> httpx.Response:
    headers = _bearer(token) | ({HEADER: admission} if admission else {})
    body = {"event_id": event_id, "seat_ids": [seat], "idempotency_key": f"h-{uuid.uuid4()}"}
    return httpx.post(f"{mesh.http}/v1/holds", headers=headers, json=body, timeout=20)


def _reason(reply: httpx.Response) -> str:
    """A service's refusal names its reason in a google.rpc.ErrorInfo."""
    infos = [d for d in reply.json().get("details", []) if d["@type"].endswith("ErrorInfo")]
    return str(infos[0]["reason"]) if infos else ""


def _seat_state(mesh: Mesh, event_id: str, seat: str) -> str:
    seats = httpx.get(f"{mesh.http}/v1/events/{event_id}/seats").json()["seats"]
    return str(next(s["status"] for s in seats if s["seat_id"] == seat))


def _admitted(mesh: Mesh, token: str, event_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        current = edge_flows.ticket(mesh.http, token, event_id)
        assert current["status"] == "TICKET_STATUS_ADMITTED", current
        return current

    return eventually(check, timeout=30)


@pytest.fixture
def admin(mesh: Mesh) -> str:
    return mesh.admin_token()


def test_a_queued_event_refuses_holds_without_an_admission_token(mesh: Mesh, admin: str) -> None:
    event_id = edge_flows.new_event(mesh.http, admin)
    other_event = edge_flows.new_event(mesh.http, admin)
    for queued in (event_id, other_event):
        edge_flows.create_room(mesh.http, admin, queued, new_users_per_minute=6000)
    customer = mesh.user_token()

    # Booking asks the room on each hold: a new room is in force at once.
    skipped = _hold(mesh, customer, event_id, "FLOOR-R01-001")
    assert skipped.status_code == 403, skipped.text
    assert skipped.headers["content-type"] == "application/json"
    assert _reason(skipped) == "ADMISSION_REQUIRED"
    assert f"/v1/events/{event_id}/queue" in skipped.json()["message"]
    # Native gRPC is refused the same way, by the same rule.
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        request = booking_pb2.HoldSeatsRequest(
            event_id=event_id, seat_ids=["FLOOR-R01-001"], idempotency_key=str(uuid.uuid4())
        )
        with pytest.raises(grpc.RpcError) as refused_rpc:
            booking_pb2_grpc.BookingServiceStub(channel).HoldSeats(
                request, metadata=(("authorization", f"Bearer {customer}"),), timeout=10
            )
    assert refused_rpc.value.code() is grpc.StatusCode.PERMISSION_DENIED
    # Another spelling of the event's id is not another event: it is refused as a
    # malformed id, before any rule could read it differently.
    upper = _hold(mesh, customer, event_id.upper(), "FLOOR-R01-001")
    assert upper.status_code == 400 and "canonical form" in upper.text, upper.text
    # Never a hold.
    assert _seat_state(mesh, event_id, "FLOOR-R01-001") == "SEAT_STATUS_AVAILABLE"

    joined = edge_flows.join(mesh.http, customer, event_id)
    assert joined["status"] in ("TICKET_STATUS_WAITING", "TICKET_STATUS_ADMITTED")
    token = _admitted(mesh, customer, event_id)["admission_token"]
    held = _hold(mesh, customer, event_id, "FLOOR-R01-001", token)
    assert held.status_code == 200, held.text

    # The token is this customer's, for this event: no one else's, no other event's.
    stranger = mesh.user_token()
    borrowed = _hold(mesh, stranger, event_id, "FLOOR-R01-002", token)
    assert borrowed.status_code == 403 and _reason(borrowed) == "ADMISSION_MISMATCH"
    elsewhere = _hold(mesh, customer, other_event, "FLOOR-R01-002", token)
    assert elsewhere.status_code == 403 and _reason(elsewhere) == "ADMISSION_MISMATCH"
    # A forged or tampered token is refused by the signature check.
    forged = _hold(mesh, customer, event_id, "FLOOR-R01-003", token[:-4] + "AAAA")
    assert forged.status_code == 401, forged.text
    for seat in ("FLOOR-R01-002", "FLOOR-R01-003"):
        assert _seat_state(mesh, event_id, seat) == "SEAT_STATUS_AVAILABLE"

    # Without a room, holds need no token again.
    deleted = httpx.delete(f"{mesh.http}/v1/rooms/{other_event}", headers=_bearer(admin))
    assert deleted.status_code == 200, deleted.text
    assert _hold(mesh, stranger, other_event, "FLOOR-R01-004").status_code == 200


def test_an_admission_ends_with_its_session_not_with_its_token(mesh: Mesh, admin: str) -> None:
    """Room for one: the first customer is admitted and leaves, the next takes the
    place, and the first one's token (signed, unexpired) no longer holds a seat."""
    event_id = edge_flows.new_event(mesh.http, admin)
    edge_flows.create_room(
        mesh.http, admin, event_id, new_users_per_minute=6000, total_active_users=1
    )
    first, second = mesh.user_token(), mesh.user_token()
    edge_flows.join(mesh.http, first, event_id)
    edge_flows.join(mesh.http, second, event_id)
    token = _admitted(mesh, first, event_id)["admission_token"]
    assert _hold(mesh, first, event_id, "FLOOR-R02-001", token).status_code == 200
    left = httpx.post(
        f"{mesh.http}/v1/events/{event_id}/queue:leave", headers=_bearer(first), json={}
    )
    assert left.status_code == 200 and left.json()["status"] == "TICKET_STATUS_NONE", left.text
    _admitted(mesh, second, event_id)
    ended = _hold(mesh, first, event_id, "FLOOR-R02-002", token)
    assert ended.status_code == 403 and _reason(ended) == "ADMISSION_ENDED", ended.text
    assert _seat_state(mesh, event_id, "FLOOR-R02-002") == "SEAT_STATUS_AVAILABLE"
    # A reset (the room deleted and made again) ends the second one's session too.
    second_token = edge_flows.ticket(mesh.http, second, event_id)["admission_token"]
    assert (
        httpx.delete(f"{mesh.http}/v1/rooms/{event_id}", headers=_bearer(admin)).status_code == 200
    )
    edge_flows.create_room(mesh.http, admin, event_id, paused=True)
    reset = _hold(mesh, second, event_id, "FLOOR-R02-003", second_token)
    assert reset.status_code == 403 and _reason(reset) == "ADMISSION_ENDED", reset.text


async def _progress(ws: aiohttp.ClientWebSocketResponse, served: int) -> dict[str, Any]:
    while True:
        update = await frame(ws, timeout=20)
        if "queue" in update and int(update["queue"]["served"]) >= served:
            return dict(update["queue"])


def test_fifo_admission_with_progress_on_the_websocket(mesh: Mesh, admin: str) -> None:
    event_id = edge_flows.new_event(mesh.http, admin)
    room = edge_flows.create_room(
        mesh.http, admin, event_id, paused=True, new_users_per_minute=600, total_active_users=100
    )
    assert room["paused"] is True
    customers = [mesh.user_token() for _ in range(6)]
    places = [edge_flows.join(mesh.http, c, event_id)["position"] for c in customers]
    assert places == ["1", "2", "3", "4", "5", "6"]

    async def follow() -> dict[str, Any]:
        url = f"{mesh.http.replace('http', 'ws')}/v1/live/events/{event_id}/queue"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            ready = await until_ready(ws)
            assert ready[-1]["ready"]["topic"] == f"queue:{event_id}"
            resumed = await session.patch(
                f"{mesh.http}/v1/rooms/{event_id}", headers=_bearer(admin), json={"paused": False}
            )
            assert resumed.status == 200, await resumed.text()
            return await _progress(ws, len(customers))

    progress = asyncio.run(follow())
    assert progress["queue_length"] == "0" and progress["paused"] is False
    tickets = [_admitted(mesh, c, event_id) for c in customers]
    assert all(t["admission_token"] for t in tickets)
    figures = httpx.get(f"{mesh.http}/v1/rooms/{event_id}", headers=_bearer(admin)).json()
    assert figures["admitted_total"] == "6" and figures["active_users"] == "6"


def test_every_place_survives_the_instances_restarting(mesh: Mesh, admin: str) -> None:
    event_id = edge_flows.new_event(mesh.http, admin)
    edge_flows.create_room(mesh.http, admin, event_id, paused=True)
    customers = [mesh.user_token() for _ in range(8)]
    before = [edge_flows.join(mesh.http, c, event_id)["position"] for c in customers]
    rpc = supervisor.client(mesh.plan.layout)
    for name in ("waitingroom-0", "waitingroom-1"):
        rpc.stopProcess(name, True)
        rpc.startProcess(name, True)
    # Every place as it was, answered by the restarted instances.
    after = eventually(
        lambda: [edge_flows.ticket(mesh.http, c, event_id)["position"] for c in customers],
        timeout=30,
    )
    assert after == before == [str(i) for i in range(1, 9)]


def _booking_load(mesh: Mesh, event_id: str, worker: int, stop: threading.Event) -> None:
    """One hold and order, then payment attempts with a declining card (the order
    stays payable), so booking's pay latency has something to say, slow or fast,
    without selling out the event."""
    token = mesh.user_token()
    with httpx.Client(base_url=mesh.http, headers=_bearer(token), timeout=30) as api:
        seat = f"UPPER-R01-{worker + 1:03d}"
        body = {"event_id": event_id, "seat_ids": [seat], "idempotency_key": str(uuid.uuid4())}
        held = api.post("/v1/holds", json=body)
        assert held.status_code == 200, held.text
        order = api.post(
            "/v1/orders", json={"hold_id": held.json()["hold_id"], "idempotency_key": f"o-{seat}"}
        )
        assert order.status_code == 200, order.text
        pay = f"/v1/orders/{order.json()['order_id']}:pay"
        while not stop.is_set():
            api.post(pay, json={"card_token": "tok_decline", "idempotency_key": str(uuid.uuid4())})
            stop.wait(0.25)


def test_the_adaptive_rate_falls_when_booking_slows_down(mesh: Mesh, admin: str) -> None:
    event_id = edge_flows.new_event(mesh.http, admin)
    edge_flows.create_room(
        mesh.http,
        admin,
        event_id,
        mode="ADMISSION_MODE_ADAPTIVE",
        new_users_per_minute=6000,
        target_booking_p99_ms=1000,
    )
    unqueued = edge_flows.new_event(mesh.http, admin, "Unqueued")
    stop = threading.Event()
    # Eight at a time: slowed calls must still be enough to measure (5 an interval).
    loads = [
        threading.Thread(target=_booking_load, args=(mesh, unqueued, i, stop), daemon=True)
        for i in range(8)
    ]
    for load in loads:
        load.start()

    def room() -> dict[str, Any]:
        reply = httpx.get(f"{mesh.http}/v1/rooms/{event_id}", headers=_bearer(admin))
        return dict(reply.json())

    try:
        # Booking answers fast: the rate climbs from its start (a quarter of the ceiling).
        start = room()["admission_rate_per_minute"]
        fast = eventually(
            lambda: room()["admission_rate_per_minute"] > start and room(), timeout=60
        )
        assert 0 < fast["observed_booking_p99_ms"] < 1000
        # Payments slowed by 1.5 s (a TrafficPolicy delay): booking's PayOrder with it.
        policies.apply(
            mesh.plan,
            "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\n"
            "metadata: {name: slow-payments}\nspec:\n  service: payments\n"
            "  fault: {delay: {percent: 100, duration: 1500ms}}\n",
        )
        peak = room()["admission_rate_per_minute"]
        slow = eventually(
            lambda: (
                room()["observed_booking_p99_ms"] > 1000
                and room()["admission_rate_per_minute"] < peak / 2
                and room()
            ),
            timeout=60,
        )
        assert slow["admission_rate_per_minute"] >= 6  # never to zero
    finally:
        stop.set()
        for load in loads:
            load.join(timeout=30)
        if any(p.name == "slow-payments" for p in policies.stored(mesh.plan)):
            policies.delete(mesh.plan, "slow-payments")
