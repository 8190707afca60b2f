"""The realtime service against real Redis, over real WebSockets (aiohttp's
client, and a raw socket for a client that never reads)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from google.protobuf.message import Message
from redis.asyncio import Redis

from groundwork.booking.v1 import events_pb2
from groundwork.realtime.v1 import realtime_pb2 as pb
from groundwork_realtime.__main__ import run
from groundwork_realtime.settings import RealtimeSettings
from groundwork_shared.bus import publish
from groundwork_shared.events import envelope
from groundwork_shared.positions import parse
from tests.conftest import settles
from tests.live import frame, until_ready

HOST = "127.78.3.1"


class Server:
    def __init__(self, settings: RealtimeSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.base = f"http://{settings.http_listen}"
        self.ws_base = f"ws://{settings.http_listen}"
        self.stop = asyncio.Event()

    async def publish(self, event_type: str, payload: Message) -> str:
        return await publish(
            self.redis, self.settings.realtime_stream, envelope(event_type, "x", payload)
        )


@contextlib.asynccontextmanager
async def serving(redis_url: str, **overrides: Any) -> AsyncIterator[Server]:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    settings = RealtimeSettings(
        instance_id="realtime-test",
        http_listen=f"{HOST}:{port}",
        redis_url=redis_url,
        realtime_stream=f"booking-{uuid.uuid4().hex[:8]}",
        **overrides,
    )
    redis = Redis.from_url(redis_url)
    server = Server(settings, redis)
    task = asyncio.create_task(run(settings, server.stop))
    async with aiohttp.ClientSession() as http:

        async def healthy() -> None:
            try:
                async with http.get(f"{server.base}/healthz") as response:
                    assert response.status == 200
            except aiohttp.ClientConnectionError as error:
                raise AssertionError(f"not listening yet: {error}") from error

        await settles(healthy, timeout=10)
    try:
        yield server
    finally:
        server.stop.set()
        await asyncio.wait_for(task, 10)
        await redis.aclose()


@pytest.fixture
async def server(redis_server: str) -> AsyncIterator[Server]:
    async with serving(redis_server) as running:
        yield running


def held(event_id: str, *seats: str) -> events_pb2.SeatsHeld:
    return events_pb2.SeatsHeld(event_id=event_id, hold_id=str(uuid.uuid4()), seat_ids=seats)


async def test_seat_updates_reach_every_watcher_of_that_event_and_no_other(
    server: Server,
) -> None:
    event, other = str(uuid.uuid4()), str(uuid.uuid4())
    url = f"{server.ws_base}/v1/live/events/{event}/seats"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url) as first,
        http.ws_connect(url) as second,
        http.ws_connect(f"{server.ws_base}/v1/live/events/{other}/seats") as bystander,
    ):
        for ws in (first, second, bystander):
            (ready,) = await until_ready(ws)
            assert ready["ready"]["replayed"] == 0
        await server.publish("booking.seats_held", held(event, "A-1", "A-2"))
        await server.publish(
            "booking.seats_released",
            events_pb2.SeatsReleased(event_id=event, seat_ids=["A-2"], reason="released"),
        )
        await server.publish(
            "booking.order_paid",
            events_pb2.OrderPaid(order_id="o", event_id=event, user_id="u", seat_ids=["A-1"]),
        )
        for ws in (first, second):
            updates = [(await frame(ws))["seats"] for _ in range(3)]
            assert [(u["seat_ids"], u["state"]) for u in updates] == [
                (["A-1", "A-2"], "SEAT_STATE_HELD"),
                (["A-2"], "SEAT_STATE_AVAILABLE"),
                (["A-1"], "SEAT_STATE_SOLD"),
            ]
        with pytest.raises(TimeoutError):
            await bystander.receive(timeout=0.5)


async def test_order_updates_go_to_their_owner_only(server: Server) -> None:
    url = f"{server.ws_base}/v1/live/orders"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"x-groundwork-user-id": "ann"}) as ann,
        http.ws_connect(url, headers={"x-groundwork-user-id": "bob"}) as bob,
    ):
        await until_ready(ann)
        await until_ready(bob)
        order = str(uuid.uuid4())
        await server.publish(
            "booking.order_created",
            events_pb2.OrderCreated(order_id=order, event_id="e", user_id="ann", amount_cents=5),
        )
        await server.publish(
            "booking.order_paid",
            events_pb2.OrderPaid(order_id=order, event_id="e", user_id="ann", seat_ids=["A-1"]),
        )
        await server.publish(
            "booking.order_cancelled",
            events_pb2.OrderCancelled(order_id="other", event_id="e", user_id="ann"),
        )
        statuses = [(await frame(ann))["order"] for _ in range(3)]
        assert [(s["order_id"], s["status"]) for s in statuses] == [
            (order, "ORDER_STATUS_PENDING_PAYMENT"),
            (order, "ORDER_STATUS_PAID"),
            ("other", "ORDER_STATUS_CANCELLED"),
        ]
        with pytest.raises(TimeoutError):
            await bob.receive(timeout=0.5)


async def test_bad_requests_are_refused_before_the_upgrade(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        cases = [
            ("/v1/live/orders", 401, "access token"),  # no identity from the edge
            ("/v1/live/events/not-a-uuid/seats", 400, "UUID"),
            (f"/v1/live/events/{uuid.uuid4()}/seats?last_event_id=yesterday", 400, "<ms>"),
        ]
        for path, status, words in cases:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.ws_base + path)
            assert refused.value.status == status
            async with http.get(server.base + path) as response:
                assert response.status == status
                assert words in (await response.json())["message"]
        # A plain GET (no upgrade) of a valid endpoint is a clear 400, not a hang.
        async with http.get(f"{server.base}/v1/live/events/{uuid.uuid4()}/seats") as response:
            assert response.status == 400
            assert "WebSocket upgrade" in (await response.json())["message"]


async def test_reconnect_replays_what_was_missed_exactly_once(server: Server) -> None:
    event = str(uuid.uuid4())
    url = f"{server.ws_base}/v1/live/events/{event}/seats"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            (ready,) = await until_ready(ws)
            await server.publish("booking.seats_held", held(event, "A-1"))
            last_seen = (await frame(ws))["id"]
        # Offline: three updates of this event and noise from another.
        for n in range(2, 5):
            await server.publish("booking.seats_held", held(event, f"A-{n}"))
            await server.publish("booking.seats_held", held(str(uuid.uuid4()), "Z-1"))
        async with http.ws_connect(f"{url}?last_event_id={last_seen}") as ws:
            frames = await until_ready(ws)
            assert [f["seats"]["seat_ids"] for f in frames[:-1]] == [["A-2"], ["A-3"], ["A-4"]]
            assert frames[-1]["ready"]["replayed"] == 3
            assert parse(frames[-1]["id"]) > parse(last_seen)
            await server.publish("booking.seats_held", held(event, "A-5"))
            assert (await frame(ws))["seats"]["seat_ids"] == ["A-5"]  # live, no repeats
        # The Ready frame's position is a resume point too.
        async with http.ws_connect(f"{url}?last_event_id={frames[-1]['id']}") as ws:
            *missed, ready = await until_ready(ws)
            assert [f["seats"]["seat_ids"] for f in missed] == [["A-5"]]
            assert ready["ready"]["replayed"] == 1


async def test_reconnect_after_trimmed_history_says_reset(server: Server) -> None:
    event = str(uuid.uuid4())
    url = f"{server.ws_base}/v1/live/events/{event}/seats"
    first = await server.publish("booking.seats_held", held(event, "A-1"))
    await server.publish("booking.seats_held", held(event, "A-2"))
    await server.publish("booking.seats_held", held(event, "A-3"))
    await server.redis.xtrim(server.settings.realtime_stream, maxlen=1, approximate=False)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{url}?last_event_id={first}") as ws,
    ):
        reset, ready = await until_ready(ws)
        assert "trimmed" in reset["reset"]["reason"]
        assert ready["ready"]["replayed"] == 0
    # A position from the future (the stream was recreated): reset as well.
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{url}?last_event_id=99999999999999-0") as ws,
    ):
        reset, _ = await until_ready(ws)
        assert "ahead" in reset["reset"]["reason"]


async def test_protobuf_subprotocol_sends_binary_frames(server: Server) -> None:
    event = str(uuid.uuid4())
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{server.ws_base}/v1/live/events/{event}/seats", protocols=["groundwork.protobuf"]
        ) as ws,
    ):
        assert ws.protocol == "groundwork.protobuf"
        ready = pb.LiveUpdate.FromString((await ws.receive(timeout=5)).data)
        assert ready.WhichOneof("update") == "ready"
        await server.publish("booking.seats_held", held(event, "B-7"))
        update = pb.LiveUpdate.FromString((await ws.receive(timeout=5)).data)
        assert list(update.seats.seat_ids) == ["B-7"]
        assert update.seats.state == pb.SEAT_STATE_HELD


async def test_idle_clients_are_pinged_and_closed_without_a_pong(redis_server: str) -> None:
    async with (
        serving(redis_server, realtime_ping_seconds=1.0) as server,
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{server.ws_base}/v1/live/events/{uuid.uuid4()}/seats", autoping=False
        ) as ws,
    ):
        await until_ready(ws)
        ping = await ws.receive(timeout=3)
        assert ping.type == aiohttp.WSMsgType.PING
        # No pong: the server gives up on this client.
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def _raw_upgrade(host: str, port: int, path: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_slow_client_is_dropped_and_does_not_hold_back_the_others(
    redis_server: str,
) -> None:
    async with serving(redis_server, realtime_client_queue=64) as server:
        event = str(uuid.uuid4())
        path = f"/v1/live/events/{event}/seats"
        host, port = server.settings.http_listen.split(":")
        slow = await asyncio.to_thread(_raw_upgrade, host, int(port), path)
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(server.ws_base + path) as fast,
            ):
                await until_ready(fast)
                # ~3 KiB per update, 2,000 updates: far more than socket buffers hold.
                seats = [f"SECTION-{n:02d}-" + "X" * 40 for n in range(50)]
                pipe = server.redis.pipeline(transaction=False)
                for n in range(2000):
                    payload = held(event, *seats)
                    pipe.xadd(
                        server.settings.realtime_stream,
                        {b"e": envelope("booking.seats_held", str(n), payload).SerializeToString()},
                    )
                await pipe.execute()
                received = 0
                while received < 2000:
                    assert "seats" in await frame(fast)
                    received += 1

                async def dropped() -> None:
                    async with http.get(f"{server.base}/healthz") as response:
                        health = await response.json()
                    assert health["dropped_slow_clients"] == 1
                    assert health["connections"] == 1  # the fast one

                await settles(dropped, timeout=10)
        finally:
            slow.close()


async def test_shutdown_tells_clients_to_reconnect_elsewhere(redis_server: str) -> None:
    async with serving(redis_server) as server, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.ws_base}/v1/live/events/{uuid.uuid4()}/seats")
        await until_ready(ws)
        server.stop.set()  # what SIGTERM does
        closed = await ws.receive(timeout=5)
        assert closed.type == aiohttp.WSMsgType.CLOSE
        assert closed.data == aiohttp.WSCloseCode.GOING_AWAY
        await ws.close()
