"""Rooms, places and the admission rate, without I/O.

A room belongs to one event. Before `opens_at` a customer joins the pre-queue
and gets a uniformly random key: sorting by those keys when the sale opens is a
fair shuffle (every order equally likely), drawn at join so no moment of the
start has to do it. After opening, FIFO places follow arrival; in random order
every admission draws uniformly among whoever is waiting then."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from groundwork_shared.errors import Violations

EPOCH = datetime.fromtimestamp(0, UTC)  # no opening time: open already


class Method(StrEnum):
    FIFO = "fifo"
    RANDOM = "random"


class Mode(StrEnum):
    FIXED = "fixed"
    ADAPTIVE = "adaptive"


class Status(StrEnum):
    PRE_QUEUE = "pre_queue"
    WAITING = "waiting"
    ADMITTED = "admitted"
    NONE = "none"


@dataclass(frozen=True)
class Room:
    event_id: str
    total_active_users: int = 500
    new_users_per_minute: int = 600
    session_seconds: int = 600
    method: Method = Method.FIFO
    opens_at: datetime = EPOCH
    paused: bool = False
    mode: Mode = Mode.FIXED
    target_booking_p99_ms: int = 250

    def validate(self) -> Room:
        problems = Violations()
        if not 1 <= self.total_active_users <= 1_000_000:
            problems.add("room.total_active_users", "must be 1 to 1,000,000")
        if not 1 <= self.new_users_per_minute <= 1_000_000:
            problems.add("room.new_users_per_minute", "must be 1 to 1,000,000")
        if not 30 <= self.session_seconds <= 86_400:
            problems.add("room.session_seconds", "must be 30 to 86,400")
        if not 10 <= self.target_booking_p99_ms <= 60_000:
            problems.add("room.target_booking_p99_ms", "must be 10 to 60,000")
        problems.raise_if_any()
        return self

    def with_changes(self, **changes: object) -> Room:
        return replace(self, **changes).validate()  # type: ignore[arg-type]


# An admitted customer holds the place this long before reading it (a poll, the
# stream, a join): the session (session_seconds) runs from that read. Longer
# than the longest pause between polls (37.5 s) so no one who is still there
# loses it, and a customer who left the queue without a word frees the place
# in 45 s instead of a whole session: before, a sale's 1,086 customers whose poll
# failed were admitted in turn and held 500 of 500 places for 600 s, and the
# room admitted no one.
CLAIM_SECONDS = 45

# Adaptive mode never admits slower than this (per minute): a stalled booking
# must not freeze the queue for good, and a recovered one is noticed.
MIN_ADAPTIVE_RATE = 6.0


def starting_rate(room: Room) -> float:
    """Fixed: as configured. Adaptive: a quarter of the ceiling, then measured."""
    if room.mode is Mode.FIXED:
        return float(room.new_users_per_minute)
    return max(MIN_ADAPTIVE_RATE, room.new_users_per_minute / 4)


def adapt(rate: float, p99_ms: float | None, room: Room) -> float:
    """The next admission rate (per minute) from booking's p99 over the last
    interval: multiplicative decrease above target, additive-and-multiplicative
    increase well under it (AIMD, as TCP does for the same problem), within
    [MIN_ADAPTIVE_RATE, new_users_per_minute]. No holds measured: unchanged."""
    ceiling = float(room.new_users_per_minute)
    if p99_ms is None:
        return min(max(rate, MIN_ADAPTIVE_RATE), ceiling)
    target = room.target_booking_p99_ms
    if p99_ms > target:
        rate *= 0.5
    elif p99_ms < 0.7 * target:
        rate = rate * 1.25 + MIN_ADAPTIVE_RATE
    return min(max(rate, MIN_ADAPTIVE_RATE), ceiling)


@dataclass(frozen=True)
class Place:
    """What the store knows about one customer in one room, read at one moment."""

    now_ms: int
    opens_at_ms: int
    admitted_until_ms: int | None  # an admitted session's end
    rank: int | None  # 0-based among the waiting
    queue_length: int
    served: int
    rate_per_minute: float
    paused: bool
    method: Method
    joined_ms: int | None


@dataclass(frozen=True)
class TicketView:
    status: Status
    position: int  # 1 = next; 0 when not waiting or in random order
    estimated_wait_seconds: float
    poll_after_seconds: float


def view(place: Place, spread: float = 0.5) -> TicketView:
    """What the customer is told. `spread` (uniform in [0, 1) per answer) moves
    each poll by up to a quarter either way: customers who joined together would
    otherwise poll together, and a crowd in step overflows the edge's limit on
    requests in flight (a sale saw 122 polls answered 503 that way)."""
    if place.admitted_until_ms is not None and place.admitted_until_ms > place.now_ms:
        return TicketView(Status.ADMITTED, 0, 0.0, 0.0)
    if place.rank is None:
        return TicketView(Status.NONE, 0, 0.0, 0.0)
    if place.now_ms < place.opens_at_ms:
        until_open = (place.opens_at_ms - place.now_ms) / 1000
        # Polls land up to 2 s after the opening, not all at its instant; until
        # then every 15 to 30 s (spread, not in step at the cap).
        if until_open > 30:
            after = round(30 * (0.5 + spread / 2), 1)
        else:
            after = max(1.0, round(until_open + 2 * spread, 1))
        return TicketView(Status.PRE_QUEUE, 0, until_open, after)
    ahead = place.rank + 1 if place.method is Method.FIFO else (place.queue_length + 1) / 2
    wait = estimated_wait(ahead, place.rate_per_minute, place.paused)
    position = place.rank + 1 if place.method is Method.FIFO else 0
    return TicketView(Status.WAITING, position, wait, poll_after(wait, spread))


def estimated_wait(ahead: float, rate_per_minute: float, paused: bool) -> float:
    """Seconds until `ahead` admissions at the current rate (infinite while
    paused is reported as -1: unknown)."""
    if paused or rate_per_minute <= 0:
        return -1.0
    return round(ahead * 60 / rate_per_minute, 1)


def poll_after(wait_seconds: float, spread: float = 0.5) -> float:
    """The estimated wait itself, moved by `spread` (see view): a customer polls
    about when the turn should come, and again if the rate changed meanwhile. A
    simulated sale (steady, rising and falling rates) polled 4 times a customer
    this way, against 8 at half the wait and 18 at a quarter, and learned of its
    admission about a second later; polls were most of a sale's requests. Never
    more than every second, and at least every 37.5 s (a WebSocket follower does
    not need to poll at all)."""
    base = 10.0 if wait_seconds < 0 else min(30.0, wait_seconds)
    # Spread after the 30 s cap: spread first, every long wait was capped to the
    # same 30.0 and the whole queue polled in step (a sale's requests rose and
    # fell tenfold in a 30 s wave).
    return max(1.0, round(base * (0.75 + spread / 2), 1))


def booking_p99_ms(
    before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]
) -> float | None:
    """The slowest p99 among booking's methods between two snapshots: the step an
    admitted customer waits longest on sets the pace. None when none has enough."""
    found = [p99_ms(before.get(m, {}), counts) for m, counts in after.items()]
    measured = [p for p in found if p is not None]
    return max(measured) if measured else None


# Fewer observations than this make no p99 worth acting on.
MIN_OBSERVATIONS = 5


def window_ends(
    before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]
) -> bool:
    """Whether the next p99 is measured from `after` on: once some method has
    enough observations since `before`, or a counter went back (a restart). Until
    then the window grows: a trickle of holds (the rate at its floor) is still
    measured, instead of being dropped an interval at a time and leaving the rate
    where it is for good."""
    for method, counts in after.items():
        deltas = [c - before.get(method, {}).get(le, 0.0) for le, c in counts.items()]
        if any(d < 0 for d in deltas) or max(deltas, default=0.0) >= MIN_OBSERVATIONS:
            return True
    return any(method not in after for method in before)


def p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """p99 of the observations between two snapshots of a Prometheus histogram's
    cumulative buckets ({le: count}, +Inf included), interpolated linearly in its
    bucket as Prometheus' histogram_quantile does. None under MIN_OBSERVATIONS."""
    bounds = sorted(after)
    deltas = [after[b] - before.get(b, 0.0) for b in bounds]
    total = deltas[-1] if deltas else 0.0
    if total < MIN_OBSERVATIONS or any(d < 0 for d in deltas):  # a restart resets counters
        return None
    rank = 0.99 * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, deltas, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower * 1000  # beyond the last finite bucket: its bound
            inside = count - below
            share = (rank - below) / inside if inside else 1.0
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return lower * 1000


# A watched place (WatchQueueTicket): how often an unchanged ticket is sent again,
# so proxies on the way see a live stream (the edge cuts a stream idle for 60 s),
# and how long one stream may last before the client reconnects.
HEARTBEAT_SECONDS = 15
HEARTBEAT_RANGE = (1, 60)
LONGEST_WATCH_SECONDS = 600


@dataclass(frozen=True)
class Watch:
    heartbeat_seconds: int
    max_seconds: int

    @classmethod
    def of(cls, heartbeat_seconds: int, max_seconds: int) -> Watch:
        """The client's limits (0: the default), every problem at once."""
        problems = Violations()
        low, high = HEARTBEAT_RANGE
        if heartbeat_seconds and not low <= heartbeat_seconds <= high:
            problems.add(
                "heartbeat_seconds", f"between {low} and {high}, or 0 for {HEARTBEAT_SECONDS}"
            )
        if not 0 <= max_seconds <= LONGEST_WATCH_SECONDS:
            problems.add(
                "max_seconds",
                f"between 1 and {LONGEST_WATCH_SECONDS}, or 0 for {LONGEST_WATCH_SECONDS}",
            )
        problems.raise_if_any()
        return cls(heartbeat_seconds or HEARTBEAT_SECONDS, max_seconds or LONGEST_WATCH_SECONDS)


def watch_ends(status: Status) -> bool:
    """Nothing more will change for this caller: admitted (the ticket carries the
    token), or not in the queue at all."""
    return status in (Status.ADMITTED, Status.NONE)
