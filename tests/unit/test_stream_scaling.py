"""The StreamScaler's decision: lag -> replicas, within bounds, up at once, down
only after the cooldown, and steady within the tolerance."""

from __future__ import annotations

import pytest
from groundwork_operator.scaling import ScalerSpec, decide
from pydantic import ValidationError

SPEC = ScalerSpec.model_validate(
    {
        "deployment": "ticketing",
        "stream": "booking",
        "group": "ticketing",
        "targetLagPerReplica": 100,
        "minReplicas": 1,
        "maxReplicas": 5,
        "cooldownSeconds": 60,
        "tolerance": 0.1,
    }
)


@pytest.mark.parametrize(
    ("lag", "current", "replicas"),
    [
        (0, 1, 1),  # idle: the minimum
        (100, 1, 1),  # exactly the target
        (101, 1, 2),  # past it: one more (no tolerance here)
        (450, 2, 5),
        (10_000, 2, 5),  # never past the maximum
    ],
)
def test_replicas_follow_lag_within_bounds(lag: int, current: int, replicas: int) -> None:
    spec = SPEC.model_copy(update={"tolerance": 0.0})
    assert decide(spec, lag, current, seconds_since_change=None).replicas == replicas


def test_scales_up_at_once_even_inside_the_cooldown() -> None:
    decision = decide(SPEC, lag=350, current=1, seconds_since_change=1)
    assert decision.replicas == 4
    assert "needs 4 replicas" in decision.reason


def test_scales_down_only_after_the_cooldown() -> None:
    held = decide(SPEC, lag=0, current=4, seconds_since_change=20)
    assert held.replicas == 4
    assert "cooling down 40s more" in held.reason
    done = decide(SPEC, lag=0, current=4, seconds_since_change=61)
    assert done.replicas == 1
    never_changed = decide(SPEC, lag=0, current=4, seconds_since_change=None)
    assert never_changed.replicas == 1


def test_no_change_within_the_tolerance() -> None:
    # 2 replicas carry 200 at the target; 215 is 7.5% over: stay (no flapping at the edge).
    assert decide(SPEC, lag=215, current=2, seconds_since_change=None).replicas == 2
    assert "within tolerance" in decide(SPEC, lag=215, current=2, seconds_since_change=None).reason
    # 185 is 7.5% under: stay too, even with the cooldown long over.
    assert decide(SPEC, lag=185, current=2, seconds_since_change=1000).replicas == 2
    # 250 is 25% over: up.
    assert decide(SPEC, lag=250, current=2, seconds_since_change=None).replicas == 3


def test_a_scale_outside_the_bounds_is_brought_back() -> None:
    assert decide(SPEC, lag=0, current=0, seconds_since_change=5).replicas == 1
    assert decide(SPEC, lag=0, current=9, seconds_since_change=5).replicas == 5


def test_zero_minimum_scales_an_idle_consumer_away_and_back() -> None:
    spec = SPEC.model_copy(update={"min_replicas": 0})
    assert decide(spec, lag=0, current=1, seconds_since_change=None).replicas == 0
    assert decide(spec, lag=1, current=0, seconds_since_change=1).replicas == 1


def test_the_spec_refuses_inverted_bounds() -> None:
    with pytest.raises(ValidationError, match=r"minReplicas \(6\) exceeds maxReplicas \(5\)"):
        ScalerSpec.model_validate({**SPEC.model_dump(by_alias=True), "minReplicas": 6})
