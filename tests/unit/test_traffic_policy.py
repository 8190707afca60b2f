"""The TrafficPolicy compiler: every field lands in the Envoy resources it must,
in the Envoys it must, and what cannot apply is refused in words that say why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from groundwork_envoy import dynamic
from groundwork_envoy.model import load_mesh
from groundwork_envoy.policy import PolicyError, TrafficPolicy, load, parse
from groundwork_envoy.profiles import KubernetesProfile, LocalProfile
from groundwork_envoy.render import compile_static, render

MESH = load_mesh()
CRD = Path(__file__).parents[2] / "helm" / "groundwork" / "crds" / "trafficpolicies.yaml"


def policy(spec: dict[str, Any], name: str = "p") -> TrafficPolicy:
    return parse(
        {
            "apiVersion": "groundwork.dev/v1alpha1",
            "kind": "TrafficPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def compiled(tmp_path: Path, *policies: TrafficPolicy) -> dict[str, dict[str, Any]]:
    configs, outcome, _ = compile_static(MESH, LocalProfile(MESH, tmp_path), policies)
    assert not outcome.errors, outcome.errors
    return configs


def routes_to(config: dict[str, Any], cluster: str, streams: bool = False) -> list[dict[str, Any]]:
    """The unary routes to `cluster` (or its streams' routes)."""
    found = []
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            rc = chain["filters"][0]["typed_config"].get("route_config", {})
            if (
                rc.get("name") not in ("edge_routes", "outbound")
                or listener["name"] == "edge_https"
            ):
                continue
            if listener["name"] == "edge_http3":
                continue  # the edge's three listeners share one route configuration
            for vhost in rc["virtual_hosts"]:
                for route in vhost["routes"]:
                    action = route.get("route", {})
                    names = [action.get("cluster")] + [
                        c["name"] for c in action.get("weighted_clusters", {}).get("clusters", [])
                    ]
                    stream = "max_stream_duration" in action
                    if any(n and n.startswith(cluster) for n in names) and stream == streams:
                        found.append(route)
    return found


def inbound_routes(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    inbound = next(x for x in config["static_resources"]["listeners"] if x["name"] == "inbound")
    rc = inbound["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
    return {r["name"]: r for r in rc["virtual_hosts"][0]["routes"]}


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == name)


def test_no_policy_leaves_the_mesh_defaults(tmp_path: Path) -> None:
    configs = compiled(tmp_path)
    for route in routes_to(configs["edge"], "catalog"):
        assert route["route"]["timeout"] == "15s"
        assert "weighted_clusters" not in route["route"]
    app = inbound_routes(configs["sidecar-catalog-0"])["app"]
    assert "typed_per_filter_config" not in app


def test_timeout_and_retries_land_on_every_callers_routes(tmp_path: Path) -> None:
    spec = {
        "service": "catalog",
        "timeout": "2s",
        "retries": {
            "conditions": ["unavailable", "reset"],
            "attempts": 4,
            "perTryTimeout": "500ms",
        },
    }
    configs = compiled(tmp_path, policy(spec))
    for caller, name in (("edge", "catalog"), ("sidecar-booking-0", "outbound_catalog")):
        routes = routes_to(configs[caller], name)
        assert routes
        for route in routes:
            assert route["route"]["timeout"] == "2.000s"
            retry = route["route"]["retry_policy"]
            assert retry["retry_on"] == "unavailable,reset"
            assert retry["num_retries"] == 4
            assert retry["per_try_timeout"] == "0.500s"
    # Other services' routes keep their defaults.
    for route in routes_to(configs["edge"], "booking"):
        assert route["route"]["timeout"] == "15s"
    # And streams (server reflection, at catalog) keep theirs: a unary timeout would cut them.
    streams = routes_to(configs["edge"], "catalog", streams=True)
    assert streams
    for route in streams:
        assert route["route"]["timeout"] == "0s"
        assert "retry_policy" not in route["route"]


def test_circuit_breaker_budget_and_outlier_detection_land_on_callers_clusters(
    tmp_path: Path,
) -> None:
    spec = {
        "service": "payments",
        "retries": {"budget": {"percent": 25, "minConcurrency": 5}},
        "circuitBreaker": {"maxRequests": 50, "maxPendingRequests": 10},
        "outlierDetection": {"consecutive5xx": 2, "baseEjectionTime": "1s"},
    }
    configs = compiled(tmp_path, policy(spec))
    payments = cluster(configs["sidecar-booking-0"], "outbound_payments")
    threshold = payments["circuit_breakers"]["thresholds"][0]
    assert threshold["max_requests"] == 50
    assert threshold["max_pending_requests"] == 10
    assert threshold["max_connections"] == 1024
    assert threshold["retry_budget"] == {
        "budget_percent": {"value": 25.0},
        "min_retry_concurrency": 5,
    }
    assert payments["outlier_detection"] == {
        "consecutive_5xx": 2,
        "interval": "10.000s",
        "base_ejection_time": "1.000s",
        "max_ejection_percent": 50,
    }
    # The edge never calls payments: nothing there changes.
    assert "payments" not in {c["name"] for c in configs["edge"]["static_resources"]["clusters"]}


def test_fault_and_rate_limit_land_on_the_services_own_inbound(tmp_path: Path) -> None:
    spec = {
        "service": "catalog",
        "fault": {
            "delay": {"percent": 10, "duration": "200ms"},
            "abort": {"percent": 2.5, "grpcStatus": 14},
        },
        "rateLimit": {"requestsPerSecond": 100, "burst": 150},
    }
    configs = compiled(tmp_path, policy(spec))
    for instance in ("sidecar-catalog-0", "sidecar-catalog-1"):
        routes = inbound_routes(configs[instance])
        per_filter = routes["app"]["typed_per_filter_config"]
        # The listener leaves both filters off; the policy turns them on here.
        fault = per_filter["envoy.filters.http.fault"]["config"]
        assert fault["delay"] == {
            "fixed_delay": "0.200s",
            "percentage": {"numerator": 100_000, "denominator": "MILLION"},
        }
        assert fault["abort"] == {
            "grpc_status": 14,
            "percentage": {"numerator": 25_000, "denominator": "MILLION"},
        }
        bucket = per_filter["envoy.filters.http.local_ratelimit"]["config"]
        assert bucket["token_bucket"] == {
            "max_tokens": 150,
            "tokens_per_fill": 100,
            "fill_interval": "1s",
        }
        assert bucket["rate_limited_as_resource_exhausted"] is True
        # Streams see the same faults; health checks never do (callers must not
        # eject healthy instances).
        assert routes["streams"]["typed_per_filter_config"] == per_filter
        assert "typed_per_filter_config" not in routes["health"]
    # Callers are unchanged by a service-side policy.
    assert "typed_per_filter_config" not in inbound_routes(configs["sidecar-booking-0"])["app"]


def test_split_weighs_the_stable_and_canary_clusters(tmp_path: Path) -> None:
    configs = compiled(
        tmp_path, policy({"service": "catalog", "split": {"stable": 90, "canary": 10}})
    )
    routes = routes_to(configs["edge"], "catalog")
    assert routes
    for route in routes:
        assert "cluster" not in route["route"]
        assert route["route"]["weighted_clusters"]["clusters"] == [
            {"name": "catalog_stable", "weight": 90},
            {"name": "catalog_canary", "weight": 10},
        ]

    def addresses(c: dict[str, Any]) -> list[str]:
        return [
            e["endpoint"]["address"]["socket_address"]["address"]
            for e in c["load_assignment"]["endpoints"][0]["lb_endpoints"]
        ]

    # catalog-1 (the last instance) is the canary; catalog-0 is stable.
    edge = configs["edge"]
    assert addresses(cluster(edge, "catalog_stable")) == ["127.0.12.1"]
    assert addresses(cluster(edge, "catalog_canary")) == ["127.0.12.2"]
    assert addresses(cluster(edge, "catalog")) == ["127.0.12.1", "127.0.12.2"]


def test_kubernetes_split_uses_each_versions_headless_service() -> None:
    profile = KubernetesProfile(namespace="shop", canaries=frozenset({"catalog"}))
    p = policy({"service": "catalog", "split": {"stable": 80, "canary": 20}})
    configs, outcome, _ = compile_static(MESH, profile, [p])
    assert not outcome.errors
    canary = cluster(configs["edge"], "catalog_canary")
    assert canary["type"] == "STRICT_DNS"
    address = canary["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address["socket_address"]["address"] == "catalog-canary-mesh.shop.svc.cluster.local"


def test_touched_names_the_envoys_a_policy_changes(tmp_path: Path) -> None:
    p = policy(
        {
            "service": "payments",
            "timeout": "1s",
            "fault": {"delay": {"percent": 1, "duration": "1s"}},
        }
    )
    _, _, touched = compile_static(MESH, LocalProfile(MESH, tmp_path), [p])
    assert touched == {"p": ["sidecar-booking-0", "sidecar-payments-0"]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"service": "nope"}, "spec.service 'nope' is not a mesh service"),
        ({"service": "catalog", "retries": {"attempts": 0}}, "spec.retries.attempts"),
        (
            {"service": "catalog", "retries": {"conditions": ["sometimes"]}},
            "spec.retries.conditions",
        ),
        (
            {"service": "catalog", "timeout": "1s", "retries": {"perTryTimeout": "2s"}},
            "retries.perTryTimeout (2s) exceeds timeout (1s)",
        ),
        ({"service": "catalog", "timeout": "soon"}, "spec.timeout"),
        ({"service": "catalog", "fault": {}}, "fault needs a delay, an abort or both"),
        (
            {"service": "catalog", "fault": {"abort": {"percent": 5}}},
            "exactly one of httpStatus or grpcStatus",
        ),
        (
            {
                "service": "catalog",
                "fault": {"abort": {"percent": 5, "httpStatus": 503, "grpcStatus": 14}},
            },
            "exactly one of httpStatus or grpcStatus",
        ),
        (
            {"service": "catalog", "fault": {"abort": {"percent": 101, "httpStatus": 503}}},
            "spec.fault.abort.percent",
        ),
        ({"service": "catalog", "split": {"stable": 90, "canary": 5}}, "must be 100 (got 95)"),
        (
            {"service": "booking", "split": {"stable": 90, "canary": 10}},
            "booking has no canary version",
        ),
        (
            {"service": "realtime", "fault": {"abort": {"percent": 5, "grpcStatus": 14}}},
            "abort with httpStatus, not grpcStatus",
        ),
        (
            {"service": "realtime", "retries": {"conditions": ["unavailable"]}},
            "gRPC retry conditions ['unavailable'] never match",
        ),
        ({"service": "catalog", "retry": {}}, "spec.retry: Extra inputs are not permitted"),
    ],
)
def test_invalid_policies_are_refused_with_a_clear_message(
    tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    try:
        p = policy(spec)
    except PolicyError as error:
        assert message in str(error)
        return
    _, outcome, _ = compile_static(MESH, LocalProfile(MESH, tmp_path), [p])
    assert message in outcome.errors["p"]
    assert not outcome.applied


def test_one_policy_per_service(tmp_path: Path) -> None:
    first = policy({"service": "catalog", "timeout": "1s"}, "a-first")
    second = policy({"service": "catalog", "timeout": "3s"}, "b-second")
    configs, outcome, _ = compile_static(MESH, LocalProfile(MESH, tmp_path), [second, first])
    assert outcome.applied["catalog"].name == "a-first"
    assert "already has TrafficPolicy a-first" in outcome.errors["b-second"]
    assert {r["route"]["timeout"] for r in routes_to(configs["edge"], "catalog")} == {"1.000s"}


def test_documents_are_checked_before_anything_else() -> None:
    with pytest.raises(PolicyError, match="not YAML"):
        load("a: [")
    with pytest.raises(PolicyError, match=r"expected apiVersion groundwork\.dev/v1alpha1"):
        load("apiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(PolicyError, match=r"metadata\.name must be a DNS label"):
        load(
            "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: Bad_Name}\n"
        )


def test_dynamic_files_hold_listeners_clusters_and_routes(tmp_path: Path) -> None:
    files = render(MESH, LocalProfile(MESH, tmp_path))
    directory = f"{tmp_path}/envoy/sidecar-catalog-0"
    bootstrap = yaml.safe_load(files["sidecar-catalog-0.yaml"])
    assert "static_resources" not in bootstrap
    lds = bootstrap["dynamic_resources"]["lds_config"]["path_config_source"]
    assert lds == {"path": f"{directory}/lds.yaml", "watched_directory": {"path": directory}}
    listeners = yaml.safe_load(files["sidecar-catalog-0/lds.yaml"])["resources"]
    assert {x["@type"] for x in listeners} == {dynamic.LISTENER}
    inbound = next(x for x in listeners if x["name"] == "inbound")
    hcm = inbound["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"]["route_config_name"] == "inbound"
    assert "route_config" not in hcm
    routes = yaml.safe_load(files["sidecar-catalog-0/rds-inbound.yaml"])
    assert [r["name"] for r in routes["resources"]] == ["inbound"]
    clusters = yaml.safe_load(files["sidecar-catalog-0/cds.yaml"])["resources"]
    assert "local_app" in {c["name"] for c in clusters}


def test_a_policy_changes_routes_and_clusters_never_listeners(tmp_path: Path) -> None:
    """A changed listener would drain its connections: policies must not touch one."""
    profile = LocalProfile(MESH, tmp_path)
    before = render(MESH, profile)
    spec = {
        "service": "catalog",
        "timeout": "2s",
        "retries": {"conditions": ["unavailable"], "attempts": 3, "budget": {}},
        "circuitBreaker": {"maxRequests": 10},
        "outlierDetection": {},
        "rateLimit": {"requestsPerSecond": 5},
        "fault": {"abort": {"percent": 50, "httpStatus": 503}},
        "split": {"stable": 50, "canary": 50},
    }
    after = render(MESH, profile, [policy(spec)])
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {
        "edge/rds-edge_routes.yaml",
        "edge/cds.yaml",
        "sidecar-booking-0/rds-outbound.yaml",
        "sidecar-booking-0/cds.yaml",
        "sidecar-catalog-0/rds-inbound.yaml",
        "sidecar-catalog-1/rds-inbound.yaml",
    }


def _crd_fields(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties", {})
    return {k: _crd_fields(v) if v.get("type") == "object" else None for k, v in props.items()}


def _model_fields(model: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        inner = info.annotation
        args = [a for a in getattr(inner, "__args__", ()) if a is not type(None)]
        target = args[0] if args else inner
        nested = hasattr(target, "model_fields")
        result[info.alias or name] = _model_fields(target) if nested else None
    return result


def test_the_crd_schema_and_the_model_name_the_same_fields() -> None:
    from groundwork_envoy.policy import TrafficPolicySpec

    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert _crd_fields(spec) == _model_fields(TrafficPolicySpec)


def test_split_and_join_are_inverse(tmp_path: Path) -> None:
    profile = LocalProfile(MESH, tmp_path)
    p = policy({"service": "catalog", "timeout": "2s", "split": {"stable": 50, "canary": 50}})
    whole, _, _ = compile_static(MESH, profile, [p])
    files = render(MESH, profile, [p])
    for name, config in whole.items():
        parts = {k.partition("/")[2]: v for k, v in files.items() if k.startswith(f"{name}/")}
        assert dynamic.join({"bootstrap": files[f"{name}.yaml"], **parts}) == config, name


def test_a_service_side_policy_touches_only_the_services_sidecars(tmp_path: Path) -> None:
    p = policy({"service": "catalog", "rateLimit": {"requestsPerSecond": 5}})
    _, _, touched = compile_static(MESH, LocalProfile(MESH, tmp_path), [p])
    assert touched == {"p": ["sidecar-catalog-0", "sidecar-catalog-1"]}
