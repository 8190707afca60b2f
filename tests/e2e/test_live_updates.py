"""Live updates through the edge: WebSockets upgraded by the edge Envoy and
proxied over mTLS to a realtime instance's sidecar. The buyer's journey as a
browser would watch it."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import settles
from tests.e2e.conftest import Mesh
from tests.live import frame, until_ready


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _event(mesh: Mesh, index: int) -> str:
    events = httpx.get(f"{mesh.http}/v1/events", params={"page_size": index + 1}).json()
    return str(events["events"][index]["event_id"])


def test_the_buyers_journey_seen_live(mesh: Mesh) -> None:
    """signup → login → hold → order → pay → ticket, while one WebSocket watches the
    seat map (public, over TLS) and another the buyer's orders (token in the query,
    as a browser must send it)."""
    event_id = _event(mesh, 7)
    seat = "LOWER-R07-011"
    token = mesh.user_token()
    ws_https = mesh.https.replace("https://", "wss://")
    ws_http = mesh.http.replace("http://", "ws://")

    async def journey() -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{ws_https}/v1/live/events/{event_id}/seats", ssl=mesh.tls()) as seats,
            http.ws_connect(f"{ws_http}/v1/live/orders?access_token={token}") as orders,
        ):
            await until_ready(seats)
            await until_ready(orders)
            api = httpx.AsyncClient(base_url=mesh.http, headers=_auth(token), timeout=20)
            async with api:
                held = await api.post(
                    "/v1/holds",
                    json={
                        "event_id": event_id,
                        "seat_ids": [seat],
                        "idempotency_key": "journey-hold",
                    },
                )
                assert held.status_code == 200, held.text
                update = (await frame(seats))["seats"]
                assert (update["seat_ids"], update["state"]) == ([seat], "SEAT_STATE_HELD")

                order = await api.post(
                    "/v1/orders",
                    json={"hold_id": held.json()["hold_id"], "idempotency_key": "journey-order"},
                )
                order_id = order.json()["order_id"]
                created = (await frame(orders))["order"]
                assert (created["order_id"], created["status"]) == (
                    order_id,
                    "ORDER_STATUS_PENDING_PAYMENT",
                )
                paid = await api.post(
                    f"/v1/orders/{order_id}:pay",
                    json={"card_token": "tok_approve", "idempotency_key": "journey-pay"},
                )
                assert paid.status_code == 200, paid.text
                update = (await frame(seats))["seats"]
                assert (update["seat_ids"], update["state"]) == ([seat], "SEAT_STATE_SOLD")
                status = (await frame(orders))["order"]
                assert (status["order_id"], status["status"]) == (order_id, "ORDER_STATUS_PAID")

                for _ in range(75):  # the ticketing worker issues the ticket
                    tickets = (await api.get("/v1/tickets")).json()["tickets"]
                    if tickets:
                        break
                    await asyncio.sleep(0.2)
                assert [t["seat_id"] for t in tickets] == [seat]

    asyncio.run(journey())


def test_live_orders_need_a_token_and_show_only_the_callers_own(mesh: Mesh) -> None:
    event_id = _event(mesh, 7)
    ann, bob = mesh.user_token(), mesh.user_token()
    ws_http = mesh.http.replace("http://", "ws://")

    async def watch() -> None:
        async with aiohttp.ClientSession() as http:
            for bad in ("", "?access_token=not-a-token"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(f"{ws_http}/v1/live/orders{bad}")
                assert refused.value.status == 401
            # Identity headers from a client are dropped by the edge, never trusted.
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(
                    f"{ws_http}/v1/live/orders", headers={"x-groundwork-user-id": "ann"}
                )
            async with (
                http.ws_connect(f"{ws_http}/v1/live/orders", headers=_auth(bob)) as bobs,
                http.ws_connect(f"{ws_http}/v1/live/orders", headers=_auth(ann)) as anns,
            ):
                await until_ready(bobs)
                await until_ready(anns)
                async with httpx.AsyncClient(base_url=mesh.http, headers=_auth(ann)) as api:
                    held = await api.post(
                        "/v1/holds",
                        json={
                            "event_id": event_id,
                            "seat_ids": ["LOWER-R07-012"],
                            "idempotency_key": f"h-{uuid.uuid4()}",
                        },
                    )
                    await api.post(
                        "/v1/orders",
                        json={"hold_id": held.json()["hold_id"], "idempotency_key": "ann-order-1"},
                    )
                assert (await frame(anns))["order"]["status"] == "ORDER_STATUS_PENDING_PAYMENT"
                with pytest.raises(TimeoutError):
                    await bobs.receive(timeout=1)

    asyncio.run(watch())


def test_a_reconnecting_client_gets_what_it_missed(mesh: Mesh) -> None:
    event_id = _event(mesh, 7)
    token = mesh.user_token()
    url = f"{mesh.http.replace('http://', 'ws://')}/v1/live/events/{event_id}/seats"

    async def reconnect() -> None:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url) as ws:
                position = (await until_ready(ws))[-1]["id"]
            for seat in ("LOWER-R07-013", "LOWER-R07-014"):  # while disconnected
                reply = await asyncio.to_thread(
                    httpx.post,
                    f"{mesh.http}/v1/holds",
                    headers=_auth(token),
                    json={"event_id": event_id, "seat_ids": [seat], "idempotency_key": seat},
                )
                assert reply.status_code == 200, reply.text
            missed: list[str] = []
            for _ in range(50):  # until the outbox relay has published both
                async with http.ws_connect(f"{url}?last_event_id={position}") as ws:
                    *replayed, ready = await until_ready(ws)
                missed = [s for f in replayed for s in f["seats"]["seat_ids"]]
                if len(missed) == 2:
                    break
                await asyncio.sleep(0.2)
            assert missed == ["LOWER-R07-013", "LOWER-R07-014"]
            assert ready["ready"]["replayed"] == 2

    asyncio.run(reconnect())


def test_one_client_address_holds_at_most_its_cap_of_websockets(mesh: Mesh) -> None:
    """The edge's per-client cap (edge.websockets_per_client): the ones past it are
    refused with 429, whatever request id the client sends; another address has
    its own; a closed WebSocket gives its place back."""
    cap = mesh.plan.mesh.edge.websockets_per_client
    url = f"{mesh.http.replace('http://', 'ws://')}/v1/live/events/{_event(mesh, 3)}/seats"

    def session(address: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
        )

    async def crowd() -> None:
        async with session("127.68.0.1") as one, session("127.68.0.2") as other:
            opened, refused = [], []
            for _ in range(cap + 5):
                try:
                    opened.append(await one.ws_connect(url, headers={"x-request-id": "same"}))
                except aiohttp.WSServerHandshakeError as error:
                    refused.append(error.status)
            assert (len(opened), refused) == (cap, [429] * 5)
            async with other.ws_connect(url) as elsewhere:
                assert not elsewhere.closed
            # Closing one frees its place once the edge has told the counter,
            # after the stream ends: wait for the counter, then it opens.
            await opened.pop().close()
            counter = Redis.from_url(mesh.plan.redis_url())

            async def freed() -> None:
                assert await counter.zcard("rl:edge:streams:127.68.0.1") == cap - 1

            await settles(freed, timeout=10, interval=0.05)
            await counter.aclose()
            opened.append(await one.ws_connect(url))
            with pytest.raises(aiohttp.WSServerHandshakeError) as full:
                await one.ws_connect(url)
            assert full.value.status == 429
            for ws in opened:
                await ws.close()

    asyncio.run(crowd())
