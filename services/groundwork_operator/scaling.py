"""The StreamScaler's decision: a consumer group's lag -> the Deployment's replicas.

Pure, so every rule is unit-tested: enough replicas for `target_lag` entries
each, within bounds; up at once (a backlog only grows), down only after the
cooldown since the last change (a burst that drains must not bounce the scale);
and no change while the lag per replica is within `tolerance` of the target."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class ScalerSpec(BaseModel):
    """A StreamScaler's spec (the CRD's schema holds the same rules)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    deployment: str = Field(min_length=1)
    stream: str = Field(min_length=1)
    group: str = Field(min_length=1)
    target_lag_per_replica: int = Field(ge=1)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(ge=1)
    cooldown_seconds: int = Field(default=60, ge=0)
    tolerance: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _bounds(self) -> ScalerSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) exceeds maxReplicas ({self.max_replicas})"
            )
        return self


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str

    def changes(self, current: int) -> bool:
        return self.replicas != current


def decide(
    spec: ScalerSpec,
    lag: int,
    current: int,
    seconds_since_change: float | None,
) -> Decision:
    """`seconds_since_change`: since this scaler last changed the scale (None: never)."""
    bounded = min(max(current, spec.min_replicas), spec.max_replicas)
    if bounded != current:
        return Decision(
            bounded, f"{current} replicas is outside [{spec.min_replicas}, {spec.max_replicas}]"
        )
    wanted = min(
        max(math.ceil(lag / spec.target_lag_per_replica), spec.min_replicas), spec.max_replicas
    )
    if wanted == current:
        return Decision(current, f"lag {lag} fits {current} replicas")
    if current > 0:
        ratio = lag / (current * spec.target_lag_per_replica)
        if abs(ratio - 1) <= spec.tolerance:
            return Decision(current, f"lag {lag} is within tolerance of {current} replicas")
    if wanted > current:
        return Decision(wanted, f"lag {lag} needs {wanted} replicas")
    if seconds_since_change is not None and seconds_since_change < spec.cooldown_seconds:
        wait = math.ceil(spec.cooldown_seconds - seconds_since_change)
        return Decision(current, f"lag {lag} allows {wanted} replicas; cooling down {wait}s more")
    return Decision(wanted, f"lag {lag} allows {wanted} replicas")
