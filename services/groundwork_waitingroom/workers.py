"""The waiting room's background loops, in every instance:

- admission: a round per room every tick; what moved is published on the
  "waitingroom" stream, which realtime sends to the queue's WebSockets;
- adaptation: every interval, one instance (a Redis lock) reads booking's
  latency and moves the rate of every adaptive room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from groundwork.waitingroom.v1 import waitingroom_pb2 as pb
from groundwork_shared.bus import publish
from groundwork_shared.events import envelope_for
from groundwork_shared.messages import timestamp
from groundwork_shared.telemetry import background
from groundwork_waitingroom import STREAM
from groundwork_waitingroom.booking_latency import BookingLatency
from groundwork_waitingroom.domain import Mode, adapt, booking_p99_ms, window_ends
from groundwork_waitingroom.repository import Rooms

log = logging.getLogger(__name__)
# Progress is a state, not a history: a short stream is enough for reconnects.
PROGRESS_MAXLEN = 10_000


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Admission:
    def __init__(self, rooms: Rooms, redis: Redis, tick_seconds: float) -> None:
        self._rooms = rooms
        self._redis = redis
        self._tick = tick_seconds
        # What each room looked like when this instance last published, and when.
        self._last: dict[str, tuple[tuple[int, int, int, float], float]] = {}

    async def round(self) -> None:
        now = datetime.now(UTC)
        for event_id in await self._rooms.busy():
            try:
                await self._admit(event_id, now)
            except (RedisError, OSError):
                raise
            except Exception:
                # One unreadable room must not stop admission to the others.
                log.exception("admission round failed", extra={"event_id": event_id})

    async def _admit(self, event_id: str, now: datetime) -> None:
        result = await self._rooms.admit(event_id, now)
        if result is None:
            return
        shape = (result.served, result.queue_length, result.active, result.rate_per_minute)
        seen, when = self._last.get(event_id, (None, 0.0))
        # Admissions at once (the instance that made them); other changes (joins,
        # leaves) at most every second per instance, however many join.
        moment = time.monotonic()
        if not result.admitted and (seen == shape or moment - when < 1.0):
            return
        self._last[event_id] = (shape, moment)
        progress = pb.QueueProgress(
            event_id=event_id,
            served=result.served,
            queue_length=result.queue_length,
            active_users=result.active,
            admission_rate_per_minute=result.rate_per_minute,
            paused=result.paused,
            opens_at=timestamp(result.opens_at),
        )
        event = envelope_for(event_id, progress)
        await publish(self._redis, STREAM, event, maxlen=PROGRESS_MAXLEN)

    async def run(self, stop: asyncio.Event) -> None:
        with background():  # a round every tick: no trace each
            await self._first(stop)
            while not stop.is_set():
                try:
                    await self.round()
                except (RedisError, OSError) as error:
                    log.warning("admission round failed; retrying", extra={"error": repr(error)})
                await _pause(stop, self._tick)

    async def _first(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._rooms.mark_all_busy()
                return
            except (RedisError, OSError) as error:
                log.warning("cannot list the rooms; retrying", extra={"error": repr(error)})
                await _pause(stop, self._tick)


class Adaptation:
    def __init__(self, rooms: Rooms, latency: BookingLatency, interval_seconds: float) -> None:
        self._rooms = rooms
        self._latency = latency
        self._interval = interval_seconds

    async def once(self) -> float | None:
        """Move every adaptive room's rate, crowd or not (the rate is ready when
        the crowd comes); the p99 (ms) it acted on, if any. With no adaptive
        room, booking is not asked (and the last reading is dropped, so the next
        p99 is of the next interval, not of the time since)."""
        adaptive = []
        for event_id in await self._rooms.events():
            figures = await self._rooms.get(event_id)
            if figures is not None and figures.room.mode is Mode.ADAPTIVE:
                adaptive.append(figures)
        if not adaptive:
            await self._rooms.forget_booking_buckets()
            return None
        now_buckets = await self._latency.buckets()
        if now_buckets is None:
            return None
        before = await self._rooms.booking_buckets()
        if not before or window_ends(before, now_buckets):
            await self._rooms.save_booking_buckets(now_buckets)
        p99 = booking_p99_ms(before, now_buckets) if before else None
        for figures in adaptive:
            event_id = figures.room.event_id
            rate = adapt(figures.rate_per_minute, p99, figures.room)
            await self._rooms.set_rate(event_id, rate, p99)
            if rate != figures.rate_per_minute:
                log.info(
                    "admission rate adapted",
                    extra={"event_id": event_id, "rate": rate, "booking_p99_ms": p99},
                )
        return p99

    async def run(self, stop: asyncio.Event) -> None:
        with background():
            while not stop.is_set():
                try:
                    if await self._rooms.adapt_turn(int(self._interval * 1000 * 0.9)):
                        await self.once()
                except (RedisError, OSError) as error:
                    log.warning("adaptation failed; retrying", extra={"error": repr(error)})
                await _pause(stop, self._interval)
