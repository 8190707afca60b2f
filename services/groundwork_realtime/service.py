"""The realtime HTTP server (aiohttp): two WebSocket endpoints and /healthz.

    GET /v1/live/events/{event_id}/seats   public: seats turning held, available, sold
    GET /v1/live/events/{event_id}/queue   public: the event's waiting room moving
    GET /v1/live/orders                    the caller's orders (the edge verified the
                                           token and set x-groundwork-user-id)

Both take ?last_event_id=<id> to replay what a client missed since that frame.
A connection subscribes to the live tail *before* reading the replay, then skips
live updates the replay already covered: nothing falls between the two."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from groundwork.realtime.v1 import realtime_pb2 as pb
from groundwork_realtime.hub import Hub, Subscriber
from groundwork_realtime.settings import RealtimeSettings
from groundwork_realtime.updates import Routed, orders_topic, queue_topic, seats_topic
from groundwork_realtime.workers import StreamTail
from groundwork_shared import positions
from groundwork_shared.ids import CANONICAL_UUID, canonical_uuid
from groundwork_shared.metrics import WEBSOCKETS

log = logging.getLogger(__name__)

JSON = "groundwork.json"
PROTOBUF = "groundwork.protobuf"
USER_HEADER = "x-groundwork-user-id"
# How long a dropped or departing client gets to take its close frame.
CLOSE_TIMEOUT = 2.0


def _error(status: int, message: str, **fields: Any) -> web.Response:
    return web.json_response({"status": status, "message": message, **fields}, status=status)


class Realtime:
    def __init__(
        self, settings: RealtimeSettings, hub: Hub, tail: StreamTail, queue_tail: StreamTail
    ) -> None:
        self._settings = settings
        self._hub = hub
        self._tail = tail
        self._queue_tail = queue_tail
        self._sockets: set[web.WebSocketResponse] = set()
        self._draining = False
        WEBSOCKETS.set_function(lambda: len(self._sockets))

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/live/events/{event_id}/seats", self._seats)
        app.router.add_get("/v1/live/events/{event_id}/queue", self._queue)
        app.router.add_get("/v1/live/orders", self._orders)
        app.router.add_get("/healthz", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        ok = self._tail.healthy and self._queue_tail.healthy and not self._draining
        body = {
            "status": "serving" if ok else ("draining" if self._draining else "stream unavailable"),
            "connections": len(self._sockets),
            "dropped_slow_clients": self._hub.dropped,
        }
        return web.json_response(body, status=200 if ok else 503)

    async def _seats(self, request: web.Request) -> web.StreamResponse:
        return await self._event_stream(request, seats_topic, self._tail)

    async def _queue(self, request: web.Request) -> web.StreamResponse:
        return await self._event_stream(request, queue_topic, self._queue_tail)

    async def _event_stream(
        self, request: web.Request, topic_of: Callable[[str], str], tail: StreamTail
    ) -> web.StreamResponse:
        """An event's public topic (its seats or its queue), from `tail`'s stream."""
        event_id = request.match_info["event_id"]
        if canonical_uuid(event_id) is None:
            return _error(400, f"event_id {CANONICAL_UUID}", field="event_id")
        topic = topic_of(event_id)
        return await self._stream(request, topic, topic, tail)

    async def _orders(self, request: web.Request) -> web.StreamResponse:
        user = request.headers.get(USER_HEADER, "")
        if not user:
            return _error(401, "a verified access token is required")
        return await self._stream(request, orders_topic(user), "orders", self._tail)

    async def _stream(
        self, request: web.Request, topic: str, label: str, tail: StreamTail
    ) -> web.StreamResponse:
        last = request.query.get("last_event_id", "")
        if last:
            try:
                positions.parse(last)
            except ValueError as error:
                return _error(400, str(error), field="last_event_id")
        if self._draining:
            return _error(503, "shutting down; reconnect")
        if len(self._sockets) >= self._settings.realtime_max_connections:
            return _error(503, "too many connections on this instance; retry")
        ws = web.WebSocketResponse(
            protocols=(JSON, PROTOBUF),
            heartbeat=self._settings.realtime_ping_seconds,
            max_msg_size=4096,  # clients have nothing to send but control frames
            timeout=CLOSE_TIMEOUT,
        )
        if not ws.can_prepare(request).ok:
            return _error(400, "expected a WebSocket upgrade (GET with Upgrade: websocket)")
        transport = request.transport
        await ws.prepare(request)
        self._sockets.add(ws)
        subscriber = self._hub.subscribe(topic)
        try:
            await self._session(ws, subscriber, label, last, tail)
        finally:
            self._hub.unsubscribe(subscriber)
            self._sockets.discard(ws)
            if subscriber.overflowed.is_set():
                log.warning("slow client dropped", extra={"topic": label})
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        ws.close(
                            code=WSCloseCode.TRY_AGAIN_LATER,
                            message=b"too slow: reconnect with last_event_id",
                        ),
                        CLOSE_TIMEOUT,
                    )
                if transport is not None and not ws.closed:
                    transport.abort()  # it does not read: free its buffers now
        return ws

    async def _session(
        self,
        ws: web.WebSocketResponse,
        subscriber: Subscriber,
        label: str,
        last: str,
        tail: StreamTail,
    ) -> None:
        binary = ws.ws_protocol == PROTOBUF

        async def send(routed: Routed) -> None:
            if binary:
                await ws.send_bytes(routed.binary)
            else:
                await ws.send_str(routed.json)

        async def send_update(update: pb.LiveUpdate) -> None:
            await send(Routed(subscriber.topic, update))

        head = await tail.head()
        replayed = 0
        if last:
            replay = await tail.replay(
                subscriber.topic,
                last,
                head,
                self._settings.realtime_replay_scan_limit,
                self._settings.realtime_client_queue,
            )
            if replay.reset:
                await send_update(pb.LiveUpdate(id=head, reset=pb.Reset(reason=replay.reset)))
            for routed in replay.updates:
                await send(routed)
            replayed = len(replay.updates)
        await send_update(pb.LiveUpdate(id=head, ready=pb.Ready(topic=label, replayed=replayed)))
        covered = positions.parse(head)

        async def pump() -> None:
            while True:
                routed = await subscriber.queue.get()
                if positions.parse(routed.update.id) > covered:
                    await send(routed)

        async def read() -> None:
            # Control frames (pong, close) are handled while reading; data is ignored.
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    return

        tasks = [
            asyncio.create_task(pump()),
            asyncio.create_task(read()),
            asyncio.create_task(subscriber.overflowed.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Refuse new clients and ask connected ones to go elsewhere (1001 Going Away):
        they reconnect through the edge to another instance and resume."""
        self._draining = True
        closing = [
            ws.close(code=WSCloseCode.GOING_AWAY, message=b"instance shutting down; reconnect")
            for ws in list(self._sockets)
        ]
        await asyncio.gather(*closing, return_exceptions=True)
