"""Reading booking's stream: the live tail (XREAD, no consumer group: every
instance must see every event, since any instance may hold any client) and the
replay of what a reconnecting client missed (XRANGE from its last id)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from groundwork_realtime.hub import Hub
from groundwork_realtime.updates import Routed, route
from groundwork_shared import positions
from groundwork_shared.bus import Undecodable, decode, stream_head, stream_info
from groundwork_shared.telemetry import background

log = logging.getLogger(__name__)

PAGE = 500


def _routed(message_id: Any, fields: dict[Any, Any]) -> list[Routed]:
    try:
        event = decode(fields)
    except Undecodable:
        return []  # consumers dead-letter it; there is nothing to show
    return route(positions.text(message_id), event)


@dataclass(frozen=True)
class Replay:
    updates: list[Routed]
    # Set when the missed updates cannot be replayed; the client must refetch.
    reset: str | None = None


class StreamTail:
    def __init__(
        self, redis: Redis, stream: str, hub: Hub, batch: int = 100, block_ms: int = 1000
    ) -> None:
        self._redis = redis
        # Entries dispatched between two yields to the connections' senders: well
        # under a client's queue, so a burst alone does not overflow a healthy client.
        self._batch = batch
        self._stream = stream
        self._hub = hub
        self._block_ms = block_ms
        self._last_read = 0.0  # monotonic time of the last successful XREAD
        # The newest entry dispatched (None until the first read): what a new
        # connection is caught up to, without asking Redis once per handshake.
        self._position: str | None = None

    @property
    def healthy(self) -> bool:
        """The tail read the stream recently (it blocks at most block_ms per read)."""
        return time.monotonic() - self._last_read < self._block_ms / 1000 + 5

    async def head(self) -> str:
        """Where a connection subscribed now is caught up to: the newest entry this
        tail has dispatched (everything after it reaches the new subscriber), or,
        before the first read, the newest entry ever added (ORIGIN for no stream)."""
        if self._position is not None:
            return self._position
        return await self.stream_head()

    async def stream_head(self) -> str:
        """The id of the newest entry ever added (ORIGIN for a stream not yet made)."""
        return await stream_head(self._redis, self._stream)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch every new entry to the hub until `stop` is set."""
        with background():  # a blocking read a second: no trace each
            await self._follow(stop)

    async def _follow(self, stop: asyncio.Event) -> None:
        last = "$"
        while not stop.is_set():
            try:
                if last == "$":
                    # An explicit id from here on, so nothing falls between two reads.
                    last = await self.stream_head()
                    self._position = last
                reply: Any = await self._redis.xread(
                    {self._stream: last}, count=self._batch, block=self._block_ms
                )
                self._last_read = time.monotonic()
            except (RedisError, OSError) as error:
                log.warning("stream unavailable; retrying", extra={"error": repr(error)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)
                continue
            for _, entries in reply or []:
                for message_id, fields in entries:
                    last = positions.text(message_id)
                    for routed in _routed(message_id, fields):
                        self._hub.dispatch(routed)
                    self._position = last

    async def replay(
        self, topic: str, after: str, until: str, scan_limit: int, max_updates: int
    ) -> Replay:
        """The updates of `topic` in (after, until], or a reset when they are gone or
        too many: more than `max_updates` (a client's queue) or `scan_limit` entries
        to read. Both bounds keep a crowd of reconnecting clients cheap."""
        info = await stream_info(self._redis, self._stream)
        if info is None:
            return Replay([])
        start = positions.parse(after)
        newest = positions.parse(positions.text(info["last-generated-id"]))
        if start > newest:
            return Replay([], reset="last_event_id is ahead of the stream (was it recreated?)")
        # Entries before the first one left were trimmed (MAXLEN) or deleted: if the
        # client's position is older than that, it may have missed some of them.
        first = positions.parse(positions.text(info.get("recorded-first-entry-id") or "0-0"))
        removed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        if removed and start < first:
            return Replay([], reset="events after last_event_id were trimmed from the stream")
        updates: list[Routed] = []
        scanned = 0
        cursor = after
        while True:
            entries: Any = await self._redis.xrange(
                self._stream, min=f"({cursor}", max=until, count=PAGE
            )
            for message_id, fields in entries:
                updates.extend(r for r in _routed(message_id, fields) if r.topic == topic)
            scanned += len(entries)
            if len(updates) > max_updates:
                return Replay([], reset=f"more than {max_updates} updates to replay")
            if scanned > scan_limit:
                return Replay([], reset=f"more than {scan_limit} events to replay")
            if len(entries) < PAGE:
                return Replay(updates)
            cursor = positions.text(entries[-1][0])
