"""TrafficPolicy: what an operator of the mesh tunes per service, as one document.

The same document is a Kubernetes custom resource (groundwork.dev/v1alpha1,
applied by the operator) and a file for the local mesh (`groundwork policy
apply`). This module validates it; `compile` turns it into Envoy resources."""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

API_VERSION = "groundwork.dev/v1alpha1"
KIND = "TrafficPolicy"

# Envoy's retry_on conditions that make sense between mesh sidecars.
RetryOn = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "refused-stream",
    "retriable-4xx",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
]
# These read a response's grpc-status, so only a gRPC service has them.
GRPC_RETRY_ON = frozenset(
    {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
)
DURATION = r"^[0-9]+(ms|s)$"
_DURATION = re.compile(DURATION)


class PolicyError(ValueError):
    """A policy that cannot be applied; the message says what to change."""


def seconds(duration: str) -> float:
    """'250ms' or '2s' -> seconds."""
    match = _DURATION.match(duration)
    if not match:
        raise PolicyError(f"{duration!r} is not a duration like 250ms or 2s")
    value = int(duration[: match.start(1)])
    return value / 1000 if match.group(1) == "ms" else float(value)


def envoy_duration(duration: str) -> str:
    return f"{seconds(duration):.3f}s"


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class RetryBudget(_Spec):
    """At most `percent` of the requests in flight may be retries (never fewer than
    `min_concurrency`): retries cannot multiply an overload."""

    percent: float = Field(default=20.0, gt=0, le=100)
    min_concurrency: int = Field(default=3, ge=1, le=1000)


class Retries(_Spec):
    # A gRPC service's failures arrive as grpc-status (an HTTP 200): retry those
    # with the gRPC conditions (unavailable, ...), not 5xx.
    conditions: list[RetryOn] = Field(
        default_factory=lambda: list[RetryOn](["5xx", "reset", "connect-failure"])
    )
    attempts: int = Field(default=2, ge=1, le=10)
    per_try_timeout: str | None = Field(default=None, pattern=DURATION)
    budget: RetryBudget | None = None


class CircuitBreaker(_Spec):
    max_connections: int = Field(default=1024, ge=1)
    max_pending_requests: int = Field(default=1024, ge=1)
    max_requests: int = Field(default=1024, ge=1)
    max_retries: int = Field(default=16, ge=0)


class OutlierDetection(_Spec):
    consecutive_5xx: int = Field(default=5, ge=1, alias="consecutive5xx")
    interval: str = Field(default="10s", pattern=DURATION)
    base_ejection_time: str = Field(default="30s", pattern=DURATION)
    max_ejection_percent: int = Field(default=50, ge=1, le=100)


class RateLimit(_Spec):
    """A token bucket in each of the service's sidecars (per instance)."""

    requests_per_second: int = Field(ge=1)
    burst: int | None = Field(default=None, ge=1)


class Delay(_Spec):
    percent: float = Field(ge=0, le=100)
    duration: str = Field(pattern=DURATION)


class Abort(_Spec):
    percent: float = Field(ge=0, le=100)
    http_status: int | None = Field(default=None, ge=200, le=599)
    grpc_status: int | None = Field(default=None, ge=1, le=16)

    @model_validator(mode="after")
    def _one_status(self) -> Abort:
        if (self.http_status is None) == (self.grpc_status is None):
            raise ValueError("fault.abort needs exactly one of httpStatus or grpcStatus")
        return self


class Fault(_Spec):
    delay: Delay | None = None
    abort: Abort | None = None

    @model_validator(mode="after")
    def _something(self) -> Fault:
        if self.delay is None and self.abort is None:
            raise ValueError("fault needs a delay, an abort or both")
        return self


class Split(_Spec):
    """Percent of the service's traffic to its stable and canary versions."""

    stable: int = Field(ge=0, le=100)
    canary: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _hundred(self) -> Split:
        if self.stable + self.canary != 100:
            raise ValueError(
                f"split.stable + split.canary must be 100 (got {self.stable + self.canary})"
            )
        return self


class TrafficPolicySpec(_Spec):
    service: str = Field(min_length=1)
    timeout: str | None = Field(default=None, pattern=DURATION)
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None
    outlier_detection: OutlierDetection | None = None
    rate_limit: RateLimit | None = None
    fault: Fault | None = None
    split: Split | None = None

    @model_validator(mode="after")
    def _timeouts(self) -> TrafficPolicySpec:
        per_try = self.retries.per_try_timeout if self.retries else None
        if per_try and self.timeout and seconds(per_try) > seconds(self.timeout):
            raise ValueError(
                f"retries.perTryTimeout ({per_try}) exceeds timeout ({self.timeout}):"
                " a retry could never start"
            )
        return self


class TrafficPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    spec: TrafficPolicySpec
    generation: int = 1


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"spec.{where}: {message}" if where else message)
    return "; ".join(parts)


def parse(document: dict[str, Any]) -> TrafficPolicy:
    """A TrafficPolicy document (as kubectl would take it) -> a validated policy."""
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise PolicyError(f"expected apiVersion {API_VERSION} and kind {KIND}")
    metadata = document.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name):
        raise PolicyError("metadata.name must be a DNS label (lower case, digits, '-')")
    try:
        spec = TrafficPolicySpec.model_validate(document.get("spec") or {})
    except ValidationError as error:
        raise PolicyError(f"{name}: {_describe(error)}") from None
    return TrafficPolicy(name=name, spec=spec, generation=int(metadata.get("generation", 1)))


def load(text: str) -> TrafficPolicy:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"not YAML: {error}") from None
    if not isinstance(document, dict):
        raise PolicyError("a TrafficPolicy is a YAML mapping")
    return parse(document)
