"""TrafficPolicies -> Envoy resources, applied to the rendered config of one Envoy.

Where each field lands follows who can enforce it:
- the callers' side (the edge and every sidecar that may call the service): the
  request timeout, retries and the canary split on their routes to it; circuit
  breakers, the retry budget and outlier detection on their clusters of it;
- the service's own sidecars (inbound): fault injection and the rate limit, so
  they hold for every caller, and a caller's retries can hide injected failures.

Only resources Envoy reads through dynamic configuration are touched (the routes
in RDS, the clusters in CDS), so a policy takes effect without a restart."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from groundwork_envoy.dynamic import DYNAMIC_ROUTES, http_managers
from groundwork_envoy.model import Mesh
from groundwork_envoy.policy import (
    GRPC_RETRY_ON,
    Fault,
    PolicyError,
    RateLimit,
    TrafficPolicy,
    TrafficPolicySpec,
    envoy_duration,
)
from groundwork_envoy.profiles import Profile, Upstream

TYPES = "type.googleapis.com/envoy.extensions.filters.http"
FAULT = "envoy.filters.http.fault"
LOCAL_RATE_LIMIT = "envoy.filters.http.local_ratelimit"


def cluster_name(caller: str, service: str, version: str = "") -> str:
    """The cluster through which `caller` ("edge" or a service) reaches `service`."""
    base = service if caller == "edge" else f"outbound_{service}"
    return f"{base}_{version}" if version else base


def check(mesh: Mesh, profile: Profile, policy: TrafficPolicy) -> None:
    """Refuse what the mesh cannot do, in words that say what to change."""
    spec, name = policy.spec, policy.name
    if spec.service not in mesh.services:
        raise PolicyError(
            f"{name}: spec.service {spec.service!r} is not a mesh service"
            f" (one of {', '.join(mesh.services)})"
        )
    svc = mesh.services[spec.service]
    if svc.protocol != "grpc":
        grpc_only = [
            on for on in (spec.retries.conditions if spec.retries else []) if on in GRPC_RETRY_ON
        ]
        if grpc_only:
            raise PolicyError(
                f"{name}: {spec.service} speaks HTTP/1.1 (WebSocket), so the gRPC retry"
                f" conditions {grpc_only} never match: use 5xx, reset or connect-failure"
            )
        if spec.fault and spec.fault.abort and spec.fault.abort.grpc_status is not None:
            raise PolicyError(
                f"{name}: {spec.service} speaks HTTP/1.1 (WebSocket): abort with httpStatus,"
                " not grpcStatus"
            )
    if spec.split and profile.versions(mesh, spec.service) is None:
        raise PolicyError(
            f"{name}: {spec.service} has no canary version to split traffic to"
            f" (locally: set services.{spec.service}.canary in mesh.yaml;"
            f" on Kubernetes: services.{spec.service}.canary.replicas in the chart values)"
        )


@dataclass
class Outcome:
    """Which policies apply, and why the others do not."""

    applied: dict[str, TrafficPolicy] = field(default_factory=dict)  # by service
    errors: dict[str, str] = field(default_factory=dict)  # policy name -> message


def select(mesh: Mesh, profile: Profile, policies: Iterable[TrafficPolicy]) -> Outcome:
    """Check each policy; one policy per service, the first (by name) wins."""
    outcome = Outcome()
    for policy in sorted(policies, key=lambda p: p.name):
        try:
            check(mesh, profile, policy)
        except PolicyError as error:
            outcome.errors[policy.name] = str(error)
            continue
        holder = outcome.applied.get(policy.spec.service)
        if holder:
            outcome.errors[policy.name] = (
                f"{policy.name}: {policy.spec.service} already has TrafficPolicy"
                f" {holder.name}; put both in one policy or delete one"
            )
            continue
        outcome.applied[policy.spec.service] = policy
    return outcome


def _percent(value: float) -> dict[str, Any]:
    return {"numerator": round(value * 10_000), "denominator": "MILLION"}


def fault_config(fault: Fault) -> dict[str, Any]:
    config: dict[str, Any] = {"@type": f"{TYPES}.fault.v3.HTTPFault"}
    if fault.delay:
        config["delay"] = {
            "fixed_delay": envoy_duration(fault.delay.duration),
            "percentage": _percent(fault.delay.percent),
        }
    if fault.abort:
        abort: dict[str, Any] = {"percentage": _percent(fault.abort.percent)}
        if fault.abort.grpc_status is not None:
            abort["grpc_status"] = fault.abort.grpc_status
        else:
            abort["http_status"] = fault.abort.http_status
        config["abort"] = abort
    return config


def rate_limit_config(limit: RateLimit, grpc: bool) -> dict[str, Any]:
    burst = limit.burst or limit.requests_per_second
    return {
        "@type": f"{TYPES}.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "policy_rate_limit",
        "token_bucket": {
            "max_tokens": burst,
            "tokens_per_fill": limit.requests_per_second,
            "fill_interval": "1s",
        },
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        # A gRPC caller sees RESOURCE_EXHAUSTED rather than UNAVAILABLE.
        "rate_limited_as_resource_exhausted": grpc,
        "response_headers_to_add": [
            {"header": {"key": "retry-after", "value": "1"}},
        ],
    }


def retry_policy(spec: TrafficPolicySpec) -> dict[str, Any]:
    assert spec.retries
    policy: dict[str, Any] = {
        "retry_on": ",".join(spec.retries.conditions),
        "num_retries": spec.retries.attempts,
        # Another instance when there is one.
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host"
                    ".previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": 20,
    }
    if spec.retries.per_try_timeout:
        policy["per_try_timeout"] = envoy_duration(spec.retries.per_try_timeout)
    return policy


def _route_configs(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The RDS-delivered route configurations inlined in a rendered config."""
    for hcm in http_managers(config["static_resources"]["listeners"]):
        route_config = hcm.get("route_config")
        if route_config and route_config.get("name") in DYNAMIC_ROUTES:
            yield route_config


def _routes(config: dict[str, Any], route_config: str | None = None) -> Iterator[dict[str, Any]]:
    seen: set[int] = set()  # the edge's listeners share one route configuration
    for rc in _route_configs(config):
        if (route_config and rc["name"] != route_config) or id(rc) in seen:
            continue
        seen.add(id(rc))
        for vhost in rc.get("virtual_hosts", []):
            yield from vhost.get("routes", [])


def _clusters(config: dict[str, Any]) -> list[dict[str, Any]]:
    clusters: list[dict[str, Any]] = config["static_resources"]["clusters"]
    return clusters


def _endpoints(upstream: Upstream) -> list[dict[str, Any]]:
    return [
        {
            "lb_endpoints": [
                {
                    "endpoint": {
                        "address": {"socket_address": {"address": e.address, "port_value": e.port}}
                    }
                }
                for e in upstream.endpoints
            ]
        }
    ]


def add_versions(config: dict[str, Any], mesh: Mesh, profile: Profile, caller: str) -> None:
    """Beside each cluster of a service that has a canary, one per version (stable,
    canary): always there, so a split only ever changes routes."""
    clusters = _clusters(config)
    for service in [s for s in mesh.services if caller in mesh.services[s].callers]:
        versions = profile.versions(mesh, service)
        if versions is None:
            continue
        base = next(c for c in clusters if c["name"] == cluster_name(caller, service))
        for version, upstream in zip(("stable", "canary"), versions, strict=True):
            cluster = copy.deepcopy(base)
            cluster["name"] = cluster_name(caller, service, version)
            cluster["type"] = upstream.discovery
            cluster["load_assignment"] = {
                "cluster_name": cluster["name"],
                "endpoints": _endpoints(upstream),
            }
            clusters.append(cluster)


def apply_caller(config: dict[str, Any], caller: str, policy: TrafficPolicy) -> bool:
    """The caller-side fields, on `caller`'s routes to and clusters of the service;
    whether there were any."""
    spec, service = policy.spec, policy.spec.service
    target = cluster_name(caller, service)
    on_routes = bool(spec.timeout or spec.retries or spec.split)
    budget = spec.retries.budget if spec.retries else None
    on_clusters = bool(spec.circuit_breaker or spec.outlier_detection or budget)
    changed = False
    for route in _routes(config):
        action = route.get("route")
        if not on_routes or not action or action.get("cluster") != target:
            continue
        # A stream's route keeps its own timeouts: a unary timeout would cut it.
        unary = "max_stream_duration" not in action
        if spec.timeout and unary:
            action["timeout"] = envoy_duration(spec.timeout)
        if spec.retries and unary:
            action["retry_policy"] = retry_policy(spec)
        if spec.split:
            del action["cluster"]
            action["weighted_clusters"] = {
                "clusters": [
                    {"name": cluster_name(caller, service, "stable"), "weight": spec.split.stable},
                    {"name": cluster_name(caller, service, "canary"), "weight": spec.split.canary},
                ]
            }
        changed = True
    versions = {cluster_name(caller, service, v) for v in ("stable", "canary")}
    for cluster in _clusters(config):
        if not on_clusters or cluster["name"] not in {target, *versions}:
            continue
        threshold = cluster.setdefault("circuit_breakers", {}).setdefault("thresholds", [{}])[0]
        if spec.circuit_breaker:
            threshold.update(spec.circuit_breaker.model_dump())
        if budget:
            threshold["retry_budget"] = {
                "budget_percent": {"value": budget.percent},
                "min_retry_concurrency": budget.min_concurrency,
            }
        if spec.outlier_detection:
            od = spec.outlier_detection
            cluster["outlier_detection"] = {
                "consecutive_5xx": od.consecutive_5xx,
                "interval": envoy_duration(od.interval),
                "base_ejection_time": envoy_duration(od.base_ejection_time),
                "max_ejection_percent": od.max_ejection_percent,
            }
        changed = True
    return changed


def apply_target(config: dict[str, Any], mesh: Mesh, policy: TrafficPolicy) -> bool:
    """The service-side fields, on its sidecar's inbound route."""
    spec = policy.spec
    if not (spec.fault or spec.rate_limit):
        return False
    grpc = mesh.services[spec.service].protocol == "grpc"
    for route in _routes(config, "inbound"):
        if route.get("name") not in ("app", "streams"):
            continue  # health checks stay untouched
        per_filter = route.setdefault("typed_per_filter_config", {})
        if spec.fault:
            per_filter[FAULT] = enabled(fault_config(spec.fault))
        if spec.rate_limit:
            per_filter[LOCAL_RATE_LIMIT] = enabled(rate_limit_config(spec.rate_limit, grpc))
    return True


def enabled(config: dict[str, Any]) -> dict[str, Any]:
    """A route's config for a filter the listener leaves off by default (not made
    for a request at all unless its route turns it on)."""
    return {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": config}


def apply(
    config: dict[str, Any],
    mesh: Mesh,
    profile: Profile,
    role: str,
    outcome: Outcome,
) -> list[str]:
    """Compile the applied policies into one Envoy's config (in place); returns the
    names of the policies that changed it."""
    add_versions(config, mesh, profile, role)
    touched = []
    for service, policy in outcome.applied.items():
        changed = False
        if role in mesh.services[service].callers:
            changed = apply_caller(config, role, policy)
        if role == service:
            changed = apply_target(config, mesh, policy) or changed
        if changed:
            touched.append(policy.name)
    return touched
