"""The waiting room's store against real Redis, with the clock passed in (no
sleeping): FIFO order, the pre-queue's shuffle, random order's fairness, the
admission rate and active-user limit however many instances run rounds, and
places that outlive the process that gave them."""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from groundwork_waitingroom.booking_latency import BookingLatency
from groundwork_waitingroom.domain import (
    CLAIM_SECONDS,
    MIN_ADAPTIVE_RATE,
    Method,
    Mode,
    Room,
    Status,
    view,
)
from groundwork_waitingroom.repository import Rooms, Session
from groundwork_waitingroom.workers import Adaptation

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def redis(redis_server: str) -> Redis:
    return Redis.from_url(redis_server)


async def _room(rooms: Rooms, **settings: object) -> str:
    event_id = str(uuid.uuid4())
    room = Room(event_id).with_changes(**settings)
    assert await rooms.create(room, float(room.new_users_per_minute))
    return event_id


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _active(redis: Redis, event_id: str) -> set[str]:
    members = await redis.zrange(f"waitingroom:{{{event_id}}}:active", 0, -1)
    return {m.decode() if isinstance(m, bytes) else str(m) for m in members}


async def _positions(rooms: Rooms, event_id: str, users: list[str]) -> list[int]:
    places = [await rooms.place(event_id, user, T0) for user in users]
    return [view(p).position for p in places if p is not None]


async def _admitted_order(rooms: Rooms, event_id: str, redis: Redis, start: datetime) -> list[str]:
    """Admit one per round until the queue is empty; who came out, in order."""
    order: list[str] = []
    now = start
    for _ in range(10_000):
        before = await _active(redis, event_id)
        result = await rooms.admit(event_id, now)
        assert result is not None
        after = await _active(redis, event_id)
        order.extend(sorted(after - before))
        if result.queue_length == 0 and result.admitted == 0 and order:
            return order
        now += timedelta(seconds=1)
    raise AssertionError("the queue never drained")


async def test_fifo_admits_in_arrival_order(redis: Redis) -> None:
    rooms = Rooms(redis)
    # One admission a second, room for everyone: the order is the only constraint.
    event_id = await _room(rooms, new_users_per_minute=60, total_active_users=1000, opens_at=T0)
    users = [f"user-{i:03d}" for i in range(40)]
    for i, user in enumerate(users):
        joined = await rooms.join(event_id, user, T0 + timedelta(milliseconds=i))
        assert joined is not None and view(joined).position == i + 1
    again = await rooms.join(event_id, users[5], T0 + timedelta(seconds=1))
    assert again is not None and view(again).position == 6  # the same place
    place = await rooms.place(event_id, users[9], T0)
    assert place is not None
    assert view(place).position == 10
    assert await _admitted_order(rooms, event_id, redis, T0 + timedelta(seconds=1)) == users


async def test_pre_queue_is_shuffled_and_ahead_of_later_arrivals(redis: Redis) -> None:
    rooms = Rooms(redis)
    opens = T0 + timedelta(minutes=10)
    event_id = await _room(rooms, new_users_per_minute=60, total_active_users=1000, opens_at=opens)
    early = [f"early-{i:03d}" for i in range(100)]
    for i, user in enumerate(early):
        await rooms.join(event_id, user, T0 + timedelta(seconds=i))
    place = await rooms.place(event_id, early[0], T0 + timedelta(minutes=5))
    assert place is not None
    assert view(place).status is Status.PRE_QUEUE  # no place shown before the draw
    assert (await rooms.admit(event_id, T0 + timedelta(minutes=5))).admitted == 0  # type: ignore[union-attr]
    late = [f"late-{i:03d}" for i in range(20)]
    for i, user in enumerate(late):
        await rooms.join(event_id, user, opens + timedelta(milliseconds=i))
    order = await _admitted_order(rooms, event_id, redis, opens)
    assert set(order[:100]) == set(early) and order[100:] == late
    # A fair shuffle: arrival order and admission order are unrelated. The rank
    # correlation of two independent orders of 100 has sd 1/sqrt(99) ~ 0.1;
    # |rho| < 0.4 fails a fair draw with probability ~6e-5.
    ranks = [early.index(user) for user in order[:100]]
    rho = statistics.correlation(ranks, list(range(100)))
    assert abs(rho) < 0.4, rho


async def test_random_order_gives_everyone_waiting_the_same_chance(redis: Redis) -> None:
    rooms = Rooms(redis)
    event_id = await _room(
        rooms,
        method=Method.RANDOM,
        new_users_per_minute=6000,  # 100 a second: one round admits 100
        total_active_users=100,
        opens_at=T0,
    )
    users = [f"user-{i:03d}" for i in range(200)]
    for i, user in enumerate(users):
        await rooms.join(event_id, user, T0 + timedelta(milliseconds=i))
    await rooms.admit(event_id, T0 + timedelta(seconds=1))  # starts the credit clock
    result = await rooms.admit(event_id, T0 + timedelta(seconds=2))
    assert result is not None
    admitted = await _active(redis, event_id)
    assert len(admitted) == 100
    # Mean arrival index of 100 drawn without replacement from 0..199: 99.5,
    # sd sqrt((200^2-1)/12 * 100/199 / 100) = 4.09. Beyond 4 sd: p ~ 6e-5.
    mean = statistics.fmean(users.index(u) for u in admitted)
    assert abs(mean - 99.5) < 4 * 4.09, mean


async def test_admission_keeps_the_rate_and_the_active_limit_with_several_instances(
    redis: Redis,
) -> None:
    first, second = Rooms(redis), Rooms(redis)  # two instances, one store
    event_id = await _room(first, new_users_per_minute=600, total_active_users=1000, opens_at=T0)
    for i in range(500):
        await first.join(event_id, f"user-{i}", T0)
    now, total = T0, 0
    for step in range(40):  # 10 s of rounds every 250 ms, each run by both instances
        now = T0 + timedelta(milliseconds=250 * step)
        for rooms in (first, second):
            result = await rooms.admit(event_id, now)
            assert result is not None
            total += result.admitted
    # 10/s for 9.75 s after the first round, plus at most a second's burst.
    assert 97 <= total <= 97 + 10, total

    limited = await _room(first, new_users_per_minute=6000, total_active_users=25, opens_at=T0)
    for i in range(100):
        await first.join(limited, f"user-{i}", T0)
    for step in range(20):
        result = await first.admit(limited, T0 + timedelta(seconds=step))
        assert result is not None and result.active <= 25
    assert result is not None and result.active == 25
    # Sessions end: their slots go to the next customers.
    later = await first.admit(limited, T0 + timedelta(seconds=19 + 600 + 1))
    assert later is not None and later.admitted == 25


async def test_pause_admits_nobody_and_keeps_every_place(redis: Redis) -> None:
    rooms = Rooms(redis)
    event_id = await _room(rooms, new_users_per_minute=600, opens_at=T0, paused=True)
    for i in range(10):
        await rooms.join(event_id, f"user-{i}", T0)
    for step in range(10):
        result = await rooms.admit(event_id, T0 + timedelta(seconds=step))
        assert result is not None and result.admitted == 0 and result.queue_length == 10
    place = await rooms.place(event_id, "user-3", T0 + timedelta(seconds=10))
    assert place is not None and view(place).position == 4
    assert view(place).estimated_wait_seconds == -1  # unknown while paused


async def test_places_outlive_the_instance_that_gave_them(redis_server: str) -> None:
    before = Rooms(Redis.from_url(redis_server))
    event_id = await _room(before, new_users_per_minute=60, opens_at=T0)
    for i in range(30):
        await before.join(event_id, f"user-{i}", T0 + timedelta(milliseconds=i))
    users = [f"user-{i}" for i in range(30)]
    positions = await _positions(before, event_id, users)
    after = Rooms(Redis.from_url(redis_server))  # a new process, the same store
    assert positions == await _positions(after, event_id, users) == list(range(1, 31))


async def test_leaving_frees_the_place_and_the_session(redis: Redis) -> None:
    rooms = Rooms(redis)
    event_id = await _room(rooms, new_users_per_minute=6000, total_active_users=1, opens_at=T0)
    await rooms.join(event_id, "a", T0)
    await rooms.join(event_id, "b", T0)
    await rooms.admit(event_id, T0)
    await rooms.admit(event_id, T0 + timedelta(seconds=1))
    place = await rooms.place(event_id, "a", T0 + timedelta(seconds=1))
    assert place is not None and view(place).status is Status.ADMITTED
    assert await rooms.leave(event_id, "a")
    result = await rooms.admit(event_id, T0 + timedelta(seconds=2))
    assert result is not None and result.admitted == 1  # b takes a's slot
    assert await rooms.join(str(uuid.uuid4()), "a", T0) is None  # no such room


async def test_an_admitted_customer_who_never_comes_frees_the_place(redis: Redis) -> None:
    """A place admitted in a round lasts the claim window until its customer reads
    it; the session runs from that read, once. A no-show's place goes to the next
    in line after the window, not after a whole session."""
    rooms = Rooms(redis)
    event_id = await _room(
        rooms, new_users_per_minute=6000, total_active_users=2, session_seconds=600, opens_at=T0
    )
    for user in ("stays", "left", "next"):
        await rooms.join(event_id, user, T0)
    await rooms.admit(event_id, T0)
    admitted = await rooms.admit(event_id, T0 + timedelta(seconds=1))
    assert admitted is not None and admitted.admitted == 2
    assert await _active(redis, event_id) == {"stays", "left"}

    claimed = await rooms.place(event_id, "stays", T0 + timedelta(seconds=30))
    assert claimed is not None and view(claimed).status is Status.ADMITTED
    session_ends = int((T0 + timedelta(seconds=30 + 600)).timestamp() * 1000)
    assert claimed.admitted_until_ms == session_ends

    window_ends = T0 + timedelta(seconds=1 + CLAIM_SECONDS)
    held = await rooms.admit(event_id, window_ends - timedelta(seconds=1))
    assert held is not None and held.admitted == 0  # the no-show's window is not over
    freed = await rooms.admit(event_id, window_ends + timedelta(seconds=1))
    assert freed is not None and freed.admitted == 1
    assert await _active(redis, event_id) == {"stays", "next"}
    gone = await rooms.place(event_id, "left", window_ends + timedelta(seconds=1))
    assert gone is not None and view(gone).status is Status.NONE
    assert not await redis.sismember(f"waitingroom:{{{event_id}}}:unclaimed", "left")

    # Reading again does not stretch the session.
    again = await rooms.place(event_id, "stays", T0 + timedelta(seconds=300))
    assert again is not None and again.admitted_until_ms == session_ends


async def test_an_admission_lives_exactly_as_long_as_its_session(redis: Redis) -> None:
    """What booking asks before a hold (Rooms.session): admitted only while the
    place is claimed and its session runs; leaving, the session's end and a room
    reset end it at once, whatever the token's expiry says."""
    rooms = Rooms(redis)
    assert await rooms.session(str(uuid.uuid4()), "a", T0) == Session(False, None)
    event_id = await _room(
        rooms, new_users_per_minute=6000, total_active_users=1, session_seconds=60, opens_at=T0
    )
    assert await rooms.session(event_id, "a", T0) == Session(True, None)  # not in the queue
    for user in ("a", "b"):
        await rooms.join(event_id, user, T0)
    await rooms.admit(event_id, T0)
    await rooms.admit(event_id, T0 + timedelta(seconds=1))
    assert await _active(redis, event_id) == {"a"}
    # Admitted in a round but not yet come for the token: nothing to book with yet.
    assert (await rooms.session(event_id, "a", T0 + timedelta(seconds=1))).until_ms is None
    await rooms.place(event_id, "a", T0 + timedelta(seconds=2))
    ends = int((T0 + timedelta(seconds=62)).timestamp() * 1000)
    assert await rooms.session(event_id, "a", T0 + timedelta(seconds=2)) == Session(True, ends)
    assert (await rooms.session(event_id, "b", T0 + timedelta(seconds=2))).until_ms is None
    # Past its end the session is over, before any round has swept it.
    assert (await rooms.session(event_id, "a", T0 + timedelta(seconds=62))).until_ms is None

    # Leaving ends it; the next customer takes the one place.
    assert await rooms.leave(event_id, "a")
    assert (await rooms.session(event_id, "a", T0 + timedelta(seconds=3))).until_ms is None
    await rooms.admit(event_id, T0 + timedelta(seconds=3))
    await rooms.place(event_id, "b", T0 + timedelta(seconds=3))
    assert (await rooms.session(event_id, "b", T0 + timedelta(seconds=3))).until_ms is not None

    # A reset (the room deleted and made again) ends every session in it.
    await rooms.delete(event_id)
    assert await rooms.session(event_id, "b", T0 + timedelta(seconds=4)) == Session(False, None)
    assert await rooms.create(Room(event_id).with_changes(opens_at=T0), 60.0)
    assert await rooms.session(event_id, "b", T0 + timedelta(seconds=4)) == Session(True, None)


@pytest.mark.parametrize("seed", range(6))
async def test_the_active_cap_holds_under_any_joins_leaves_and_retries(
    redis: Redis, seed: int
) -> None:
    """Random sequences of joins (repeated ones included), leaves, reads that claim
    a place, admission rounds from two instances and time passing: live sessions
    never outnumber total_active_users, and each customer's session answer is the
    one the sequence implies (claimed, not left, not over)."""
    rng = random.Random(seed)
    rooms = [Rooms(redis), Rooms(redis)]
    cap = rng.randint(1, 4)
    event_id = await _room(
        rooms[0], new_users_per_minute=600, total_active_users=cap, session_seconds=30, opens_at=T0
    )
    users = [f"u{i}" for i in range(12)]
    now = T0
    claimed_until: dict[str, datetime] = {}
    for _ in range(400):
        user, store = rng.choice(users), rng.choice(rooms)
        action = rng.random()
        if action < 0.15:
            await store.leave(event_id, user)
            claimed_until.pop(user, None)
        elif action < 0.75:
            # A join (new or repeated) answers the place, as a read does: both claim it.
            read = store.join if action < 0.45 else store.place
            place = await read(event_id, user, now)
            assert place is not None
            if place.admitted_until_ms is not None and place.admitted_until_ms > _ms(now):
                claimed_until.setdefault(
                    user, datetime.fromtimestamp(place.admitted_until_ms / 1000, UTC)
                )
        elif action < 0.9:
            await store.admit(event_id, now)
        else:
            now += timedelta(seconds=rng.choice([0.2, 1, 5, 31]))
        claimed_until = {u: t for u, t in claimed_until.items() if t > now}
        live = set()
        for who in users:
            session = await store.session(event_id, who, now)
            assert session.queued
            if session.until_ms is not None:
                live.add(who)
        assert len(live) <= cap, (live, cap)
        assert live == set(claimed_until), (live, claimed_until)


async def test_an_idle_room_costs_no_round(redis: Redis) -> None:
    """Rounds visit only rooms with someone waiting or admitted: a join makes a
    room busy, the round that finds it empty drops it, and a restart's first
    round looks at every room once."""
    rooms = Rooms(redis)
    event_id = await _room(rooms)
    assert event_id not in await rooms.busy()
    await rooms.join(event_id, "u1", T0)
    assert event_id in await rooms.busy()
    await rooms.leave(event_id, "u1")
    await rooms.admit(event_id, T0)
    assert event_id not in await rooms.busy()
    await rooms.mark_all_busy()
    assert event_id in await rooms.busy()
    await rooms.admit(event_id, T0)
    assert event_id not in await rooms.busy()
    # Someone admitted keeps the room busy: their session must still expire.
    await rooms.join(event_id, "u2", T0)
    await rooms.admit(event_id, T0 + timedelta(seconds=1))
    assert event_id in await rooms.busy()
    await rooms.delete(event_id)
    assert event_id not in await rooms.busy()


class FakeBooking:
    """booking's /metrics page on loopback: every read counts, and each read adds
    `holds_per_read` fast HoldSeats observations to the histogram."""

    def __init__(self, holds_per_read: int = 0) -> None:
        self.asked = 0
        self.holds_per_read = holds_per_read
        self.holds = 0

    def page(self) -> str:
        self.asked += 1
        self.holds += self.holds_per_read
        labels = 'method="/groundwork.booking.v1.BookingService/HoldSeats"'
        return (
            "# TYPE groundwork_rpc_duration_seconds histogram\n"
            f'groundwork_rpc_duration_seconds_bucket{{{labels},le="0.01"}} {self.holds}\n'
            f'groundwork_rpc_duration_seconds_bucket{{{labels},le="+Inf"}} {self.holds}\n'
            f"groundwork_rpc_duration_seconds_count{{{labels}}} {self.holds}\n"
            f"groundwork_rpc_duration_seconds_sum{{{labels}}} {self.holds * 0.005}\n"
        )


@pytest.fixture
async def adaptation_against(
    redis_server: str, unused_tcp_port: int
) -> AsyncIterator[Callable[[FakeBooking], Awaitable[tuple[Rooms, Adaptation]]]]:
    """An Adaptation reading a FakeBooking, on a Redis database of its own."""
    from aiohttp import web

    redis = Redis.from_url(redis_server.rsplit("/", 1)[0] + "/7")
    await redis.flushdb()
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def make(booking: FakeBooking) -> tuple[Rooms, Adaptation]:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(text=booking.page())

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.78.2.30", unused_tcp_port).start()
        latency = BookingLatency([f"http://127.78.2.30:{unused_tcp_port}/metrics"])
        cleanups.extend([latency.close, runner.cleanup])
        rooms = Rooms(redis)
        return rooms, Adaptation(rooms, latency, 2.0)

    yield make
    for cleanup in cleanups:
        await cleanup()
    await redis.flushdb()


async def test_adaptation_asks_booking_nothing_without_an_adaptive_room(
    adaptation_against: Callable[[FakeBooking], Awaitable[tuple[Rooms, Adaptation]]],
) -> None:
    booking = FakeBooking()
    rooms, adaptation = await adaptation_against(booking)
    await _room(rooms)  # a fixed-rate room needs no reading
    assert await adaptation.once() is None and booking.asked == 0
    await _room(rooms, mode=Mode.ADAPTIVE)  # nobody waits yet: it adapts all the same
    await adaptation.once()
    assert booking.asked == 1


async def test_a_rate_at_its_floor_is_measured_from_a_trickle_of_holds(
    adaptation_against: Callable[[FakeBooking], Awaitable[tuple[Rooms, Adaptation]]],
) -> None:
    """Two holds an interval are too few for a p99; the window grows until it
    holds enough, and the fast holds it then measures raise the rate."""
    booking = FakeBooking(holds_per_read=2)
    rooms, adaptation = await adaptation_against(booking)
    event_id = await _room(rooms, mode=Mode.ADAPTIVE)
    await rooms.set_rate(event_id, MIN_ADAPTIVE_RATE, None)
    readings = [await adaptation.once() for _ in range(4)]
    assert readings[:3] == [None, None, None]  # the first reading, then 2 and 4 holds since
    assert readings[3] is not None and readings[3] < 10  # 6 since the window began
    figures = await rooms.get(event_id)
    assert figures is not None and figures.rate_per_minute > MIN_ADAPTIVE_RATE
