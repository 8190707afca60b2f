"""The waiting room's pure parts: settings checks, the adaptive rate (AIMD within
its bounds), the p99 read from histogram deltas, what a customer is told, and
reading booking's /metrics page."""

from __future__ import annotations

import math

import pytest

from groundwork_shared.errors import InvalidArgument
from groundwork_waitingroom import domain
from groundwork_waitingroom.booking_latency import METHODS, method_buckets
from groundwork_waitingroom.domain import (
    MIN_ADAPTIVE_RATE,
    Method,
    Mode,
    Place,
    Room,
    Status,
    adapt,
    booking_p99_ms,
    p99_ms,
    starting_rate,
    view,
    window_ends,
)

ROOM = Room("e", new_users_per_minute=600, mode=Mode.ADAPTIVE, target_booking_p99_ms=200)
INF = math.inf


def test_bad_settings_name_every_field() -> None:
    with pytest.raises(InvalidArgument) as error:
        Room("e").with_changes(total_active_users=0, session_seconds=5, new_users_per_minute=0)
    fields = {v.field for v in error.value.violations}
    assert fields == {
        "room.total_active_users",
        "room.session_seconds",
        "room.new_users_per_minute",
    }


def test_adaptive_rate_halves_above_target_and_climbs_well_under_it() -> None:
    assert starting_rate(ROOM) == 150
    assert starting_rate(Room("e", new_users_per_minute=600)) == 600  # fixed: as configured
    assert adapt(100, 250, ROOM) == 50
    assert adapt(100, 100, ROOM) == 100 * 1.25 + MIN_ADAPTIVE_RATE
    assert adapt(100, 180, ROOM) == 100  # near the target: hold
    assert adapt(100, None, ROOM) == 100  # nothing measured: hold
    assert adapt(590, 10, ROOM) == 600  # never above the ceiling
    assert adapt(7, 10_000, ROOM) == MIN_ADAPTIVE_RATE  # never to zero


def test_p99_from_histogram_deltas() -> None:
    before = {0.01: 100.0, 0.1: 100.0, 1.0: 100.0, INF: 100.0}
    # 100 new observations: 98 under 10 ms, 2 between 100 ms and 1 s.
    after = {0.01: 198.0, 0.1: 198.0, 1.0: 200.0, INF: 200.0}
    p99 = p99_ms(before, after)
    assert p99 is not None and 100 < p99 <= 1000
    assert p99_ms(before, {**after, 0.01: 101, 0.1: 101, 1.0: 103, INF: 103}) is None  # 3: too few
    assert p99_ms(after, before) is None  # counters went down: a restart, not a measurement
    slowest = booking_p99_ms({"hold": before, "pay": before}, {"hold": after, "pay": before})
    assert slowest == p99


def test_the_window_grows_until_it_holds_enough_observations() -> None:
    start = {"hold": {1.0: 10.0, INF: 10.0}}
    trickle = {"hold": {1.0: 12.0, INF: 13.0}}  # 3 holds: too few for a p99
    assert not window_ends(start, trickle)
    assert booking_p99_ms(start, trickle) is None
    enough = {"hold": {1.0: 14.0, INF: 15.0}}  # 5 since the window began
    assert window_ends(start, enough)
    assert booking_p99_ms(start, enough) is not None
    assert window_ends(enough, start)  # counters went back: a restart starts a new window
    assert window_ends(start, {"pay": {INF: 1.0}})  # hold vanished: a restart too


def _place(**changes: object) -> Place:
    base = dict(
        now_ms=10_000,
        opens_at_ms=0,
        admitted_until_ms=None,
        rank=9,
        queue_length=50,
        served=0,
        rate_per_minute=60.0,
        paused=False,
        method=Method.FIFO,
        joined_ms=1,
    )
    return Place(**{**base, **changes})  # type: ignore[arg-type]


def test_what_a_customer_is_told() -> None:
    waiting = view(_place())
    assert (waiting.status, waiting.position, waiting.estimated_wait_seconds) == (
        Status.WAITING,
        10,
        10.0,
    )
    assert view(_place(now_ms=0, opens_at_ms=60_000)).status is Status.PRE_QUEUE
    assert view(_place(admitted_until_ms=20_000)).status is Status.ADMITTED
    assert view(_place(admitted_until_ms=5_000, rank=None)).status is Status.NONE  # ended
    assert view(_place(paused=True)).estimated_wait_seconds == -1
    assert view(_place(method=Method.RANDOM)).position == 0  # no fixed place


@pytest.mark.parametrize(
    ("wait", "after"), [(-1.0, 10.0), (0.0, 1.0), (1.5, 1.5), (10.0, 10.0), (29.0, 29.0), (600, 30)]
)
def test_a_poll_comes_when_the_turn_should_within_1_to_30_seconds_on_average(
    wait: float, after: float
) -> None:
    assert domain.poll_after(wait) == after


def test_polls_are_spread_a_quarter_either_way() -> None:
    assert (domain.poll_after(20.0, 0.0), domain.poll_after(20.0, 0.999)) == (15.0, 25.0)
    assert domain.poll_after(-1.0, 0.0) == 7.5  # paused
    assert domain.poll_after(1.0, 0.0) == 1.0  # never sooner than a second
    # Long waits too: a queue capped in step would poll in waves.
    assert (domain.poll_after(600, 0.0), domain.poll_after(600, 0.999)) == (22.5, 37.5)
    pre = [view(_place(now_ms=0, opens_at_ms=10_000), s).poll_after_seconds for s in (0, 0.99)]
    assert pre == [10.0, 12.0]  # after the opening, not all at its instant
    far = [view(_place(now_ms=0, opens_at_ms=600_000), s).poll_after_seconds for s in (0, 0.99)]
    assert far == [15.0, 29.9]  # long before it: spread, never in step at a cap


def test_at_a_steady_rate_a_customer_polls_once_a_30_s_cap_and_once_at_the_turn() -> None:
    polls, left = 0, 200.0
    while left > 0:
        polls, left = polls + 1, left - domain.poll_after(left)
    assert polls == math.ceil(200 / 30)


def test_reads_each_method_of_booking_metrics_page() -> None:
    hold, pay = METHODS[0], METHODS[2]
    page = "\n".join(
        [
            "# TYPE groundwork_rpc_duration_seconds histogram",
            f'groundwork_rpc_duration_seconds_bucket{{le="0.1",method="{hold}"}} 3.0',
            f'groundwork_rpc_duration_seconds_bucket{{le="+Inf",method="{hold}"}} 4.0',
            f'groundwork_rpc_duration_seconds_count{{method="{hold}"}} 4.0',
            f'groundwork_rpc_duration_seconds_sum{{method="{hold}"}} 1.0',
            f'groundwork_rpc_duration_seconds_bucket{{le="+Inf",method="{pay}"}} 2.0',
            'groundwork_rpc_duration_seconds_bucket{le="+Inf",method="/other/Method"} 9.0',
        ]
    )
    assert method_buckets(page) == {hold: {0.1: 3.0, INF: 4.0}, pay: {INF: 2.0}}


def test_a_watch_takes_the_defaults_and_refuses_limits_out_of_range() -> None:
    assert domain.Watch.of(0, 0) == domain.Watch(
        domain.HEARTBEAT_SECONDS, domain.LONGEST_WATCH_SECONDS
    )
    assert domain.Watch.of(5, 30) == domain.Watch(5, 30)
    with pytest.raises(InvalidArgument) as info:
        domain.Watch.of(61, -1)
    assert [v.field for v in info.value.violations] == ["heartbeat_seconds", "max_seconds"]
    with pytest.raises(InvalidArgument):
        domain.Watch.of(0, domain.LONGEST_WATCH_SECONDS + 1)


def test_a_watch_ends_once_nothing_more_can_change() -> None:
    ending = {s for s in domain.Status if domain.watch_ends(s)}
    assert ending == {domain.Status.ADMITTED, domain.Status.NONE}
