from __future__ import annotations

from groundwork_ratelimit.domain import (
    Decision,
    Limit,
    limits_from,
    match,
    window_key,
)
from groundwork_ratelimit.settings import RateLimitSettings

LIMITS = {"user": Limit("per_user", 3, "MINUTE"), "remote_address": Limit("x", 2, "SECOND")}


def test_descriptors_match_by_key_and_need_a_value() -> None:
    assert match([("user", "u1")], LIMITS) == (LIMITS["user"], "user=u1")
    assert match([("user", "")], LIMITS) is None
    assert match([("other", "v")], LIMITS) is None


def test_fixed_windows_roll_over_on_their_boundary() -> None:
    minute = LIMITS["user"]
    key_a, left_a = window_key("edge", "user=u1", minute, 120.0)
    key_b, left_b = window_key("edge", "user=u1", minute, 179.9)
    key_c, _ = window_key("edge", "user=u1", minute, 180.0)
    assert key_a == key_b != key_c
    assert (left_a, left_b) == (60, 1)


def test_decision_counts_down_and_flags_over_limit() -> None:
    limit = LIMITS["user"]
    assert [Decision(limit, n, 10).over for n in (1, 3, 4)] == [False, False, True]
    assert Decision(limit, 5, 10).remaining == 0


def test_limits_come_from_settings() -> None:
    settings = RateLimitSettings(ratelimit_user_per_minute=7, ratelimit_auth_per_minute=3)
    limits = limits_from(settings.ratelimit_user_per_minute, settings.ratelimit_auth_per_minute)
    assert (limits["user"].requests, limits["user"].window) == (7, 60)
    assert (limits["remote_address"].requests, limits["remote_address"].window) == (3, 60)
    assert set(limits) == {"user", "remote_address"}  # the descriptor keys the edge sends
