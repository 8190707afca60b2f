from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from groundwork_cli.runtime.registry import services
from groundwork_envoy.model import Mesh, load_mesh
from groundwork_envoy.profiles import KubernetesProfile, LocalProfile
from groundwork_envoy.render import compile_static, render

MESH = load_mesh()


def configs(profile: Any) -> dict[str, dict[str, Any]]:
    """Each Envoy's whole config, before it is split into bootstrap and dynamic files."""
    return {f"{name}.yaml": config for name, config in compile_static(MESH, profile)[0].items()}


def listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(x for x in config["static_resources"]["listeners"] if x["name"] == name)


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == name)


def endpoints(c: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for group in c["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    ]


def bind(x: dict[str, Any]) -> tuple[str, int]:
    return x["address"]["socket_address"]["address"], x["address"]["socket_address"]["port_value"]


def test_every_python_service_is_in_the_mesh_and_back() -> None:
    assert set(services()) == set(MESH.services)


def test_local_profile_gives_each_instance_its_own_loopback_address(tmp_path: Path) -> None:
    rendered = configs(LocalProfile(MESH, tmp_path, net=5))
    assert set(rendered) == {
        "edge.yaml",
        "sidecar-identity-0.yaml",
        "sidecar-ratelimit-0.yaml",
        "sidecar-catalog-0.yaml",
        "sidecar-catalog-1.yaml",
        "sidecar-booking-0.yaml",
        "sidecar-payments-0.yaml",
        "sidecar-ticketing-0.yaml",
        "sidecar-realtime-0.yaml",
        "sidecar-realtime-1.yaml",
        "sidecar-waitingroom-0.yaml",
        "sidecar-waitingroom-1.yaml",
    }
    edge = rendered["edge.yaml"]
    assert bind(listener(edge, "edge_http")) == ("127.5.0.1", 8080)
    assert bind(listener(edge, "edge_https")) == ("127.5.0.1", 8443)
    catalog = cluster(edge, "catalog")
    assert catalog["type"] == "STATIC"
    assert catalog["lb_policy"] == "LEAST_REQUEST"
    assert endpoints(catalog) == [("127.5.12.1", 15006), ("127.5.12.2", 15006)]
    assert catalog["health_checks"][0]["grpc_health_check"]["service_name"] == (
        "groundwork.catalog.v1.CatalogService"
    )
    assert "outlier_detection" in catalog

    sidecar = rendered["sidecar-catalog-1.yaml"]
    assert bind(listener(sidecar, "inbound")) == ("127.5.12.2", 15006)
    outbound = listener(sidecar, "outbound")["address"]["pipe"]
    assert outbound == {
        "path": str(tmp_path / "run" / "apps" / "catalog-1.out.sock"),
        "mode": 0o600,
    }
    app = cluster(sidecar, "local_app")["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert app["endpoint"]["address"]["pipe"]["path"] == str(
        tmp_path / "run" / "apps" / "catalog-1.sock"
    )
    # The admin API on a 0600 Unix socket (no other local user reaches it); the
    # Prometheus metrics on a port of their own, passed to /stats/prometheus alone.
    admin = {"path": str(tmp_path / "run" / "admin" / "sidecar-catalog-1.sock"), "mode": 0o600}
    assert sidecar["admin"]["address"]["pipe"] == admin
    assert edge["admin"]["address"]["pipe"]["mode"] == 0o600
    stats = listener(sidecar, "prometheus_stats")
    assert bind(stats) == ("127.5.12.2", 15090)
    routes = stats["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
    [exposed, rest] = routes["virtual_hosts"][0]["routes"]
    assert exposed["match"]["path"] == "/stats/prometheus"
    assert rest["direct_response"]["status"] == 404
    target = cluster(sidecar, "envoy_admin")["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert target[0]["endpoint"]["address"]["pipe"]["path"] == admin["path"]


def test_kubernetes_profile_uses_service_dns_and_pod_loopback() -> None:
    rendered = configs(KubernetesProfile(namespace="shop"))
    assert set(rendered) == {
        "edge.yaml",
        "sidecar-identity.yaml",
        "sidecar-ratelimit.yaml",
        "sidecar-catalog.yaml",
        "sidecar-booking.yaml",
        "sidecar-payments.yaml",
        "sidecar-ticketing.yaml",
        "sidecar-realtime.yaml",
        "sidecar-waitingroom.yaml",
    }
    edge = rendered["edge.yaml"]
    assert bind(listener(edge, "edge_http")) == ("0.0.0.0", 8080)
    catalog = cluster(edge, "catalog")
    assert catalog["type"] == "STRICT_DNS"
    assert endpoints(catalog) == [("catalog-mesh.shop.svc.cluster.local", 15006)]
    sidecar = rendered["sidecar-catalog.yaml"]
    assert endpoints(cluster(sidecar, "local_app")) == [("127.0.0.1", 50051)]
    assert bind(listener(sidecar, "inbound")) == ("0.0.0.0", 15006)
    for config in rendered.values():  # admin can stop Envoy: pod loopback only
        assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    hcm = listener(sidecar, "inbound")["filter_chains"][0]["filters"][0]["typed_config"]
    rbac = hcm["http_filters"][0]["typed_config"]
    principals = rbac["rules"]["policies"]["callers"]["principals"]
    # Kubernetes identities are DNS-form names (the chart's certificates carry DNS SANs).
    assert principals[1]["authenticated"]["principal_name"]["exact"] == (
        "booking.shop.serviceaccount.identity.groundwork.local"
    )
    peer = cluster(edge, "catalog")["transport_socket"]["typed_config"]["common_tls_context"]
    assert peer["validation_context"]["match_typed_subject_alt_names"] == [
        {
            "san_type": "DNS",
            "matcher": {"exact": "catalog.shop.serviceaccount.identity.groundwork.local"},
        }
    ]
    assert principals[:1] == [
        {
            "authenticated": {
                "principal_name": {"exact": "edge.shop.serviceaccount.identity.groundwork.local"}
            }
        }
    ]


def _shape(node: Any) -> Any:
    """The config with addresses, DNS settings and host lists blanked: what the templates decide."""
    if isinstance(node, dict):
        # An access log's file: the instance's log locally, /dev/stdout in a pod.
        file_log = str(node.get("@type", "")).endswith("FileAccessLog")
        return {
            k: _shape(v)
            for k, v in node.items()
            if not (file_log and k == "path")
            and k
            not in {
                "address",
                "pipe",
                "type",
                "dns_lookup_family",
                "dns_refresh_rate",
                "respect_dns_ttl",
                "domains",
                "filename",
                "lb_endpoints",
                # Identities: SPIFFE URIs locally, DNS-form names on Kubernetes.
                "principal_name",
                "match_typed_subject_alt_names",
                # Locally each instance names its version (stable, canary) in a header.
                "response_headers_to_add",
            }
        }
    if isinstance(node, list):
        return [_shape(v) for v in node]
    if isinstance(node, str) and node.startswith("spiffe://"):
        return "spiffe://..."  # identities name the namespace
    return node


def test_both_profiles_come_from_the_same_templates(tmp_path: Path) -> None:
    local = configs(LocalProfile(MESH, tmp_path))
    canaries = frozenset(name for name, svc in MESH.services.items() if svc.canary)
    kube = configs(KubernetesProfile(canaries=canaries))
    assert _shape(local["edge.yaml"]) == _shape(kube["edge.yaml"])
    assert _shape(local["sidecar-catalog-0.yaml"]) == _shape(kube["sidecar-catalog.yaml"])


def test_every_envoy_names_its_service_as_its_node_cluster(tmp_path: Path) -> None:
    """A node is data from the profile: a local instance's sidecar is in its
    service's cluster, as a pod's is on Kubernetes, and the SNI is the callee."""
    for profile in (LocalProfile(MESH, tmp_path), KubernetesProfile()):
        files = render(MESH, profile)
        bootstraps = {n: yaml.safe_load(t) for n, t in files.items() if "/" not in n}
        for name, bootstrap in bootstraps.items():
            expected = "edge" if name == "edge.yaml" else name.split("-")[1].removesuffix(".yaml")
            assert bootstrap["node"]["cluster"] == expected, name
        sidecar = "sidecar-booking-0" if isinstance(profile, LocalProfile) else "sidecar-booking"
        clusters = yaml.safe_load(files[f"{sidecar}/cds.yaml"])["resources"]
        catalog = next(c for c in clusters if c["name"] == "outbound_catalog")
        tls = catalog["transport_socket"]["typed_config"]
        assert tls["sni"] == "catalog"


def _edge_hcm(tmp_path: Path, name: str = "edge_http") -> dict[str, Any]:
    edge = configs(LocalProfile(MESH, tmp_path))["edge.yaml"]
    return dict(listener(edge, name)["filter_chains"][0]["filters"][0]["typed_config"])


def test_edge_transcodes_every_public_grpc_service(tmp_path: Path) -> None:
    hcm = _edge_hcm(tmp_path)
    transcoder = next(
        f["typed_config"]
        for f in hcm["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    )
    assert transcoder["services"] == [
        "groundwork.identity.v1.IdentityService",
        "groundwork.catalog.v1.CatalogService",
        "groundwork.booking.v1.BookingService",
        "groundwork.waitingroom.v1.WaitingRoomService",
        "groundwork.ticketing.v1.TicketingService",
    ]
    assert transcoder["convert_grpc_status"] is True
    assert hcm["local_reply_config"]["body_format"]["json_format"]


def _edge_routes(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Path (gRPC methods), prefix (WebSockets, the catch-all) or regex (cached REST) -> route."""
    return {
        r["match"].get("path") or r["match"].get("prefix") or r["match"]["safe_regex"]["regex"]: r
        for r in _edge_hcm(tmp_path)["route_config"]["virtual_hosts"][0]["routes"]
    }


def test_websocket_routes_upgrade_to_the_realtime_service(tmp_path: Path) -> None:
    routes = _edge_routes(tmp_path)
    seats, orders = routes["/v1/live/events/"], routes["/v1/live/orders"]
    jwt = "envoy.filters.http.jwt_authn"
    for route in (seats, orders):
        assert route["route"]["cluster"] == "realtime"
        assert route["route"]["upgrade_configs"] == [{"upgrade_type": "websocket"}]
        # The buffer filter would wait forever for the end of an upgrade request.
        assert route["typed_per_filter_config"]["envoy.filters.http.buffer"]["disabled"]
    assert seats["typed_per_filter_config"][jwt]["disabled"] is True
    assert orders["typed_per_filter_config"][jwt]["requirement_name"] == "authenticated_live"
    # Upgrades only where declared: not on the listener as a whole.
    assert "upgrade_configs" not in _edge_hcm(tmp_path)
    edge = configs(LocalProfile(MESH, tmp_path))["edge.yaml"]
    realtime = cluster(edge, "realtime")
    assert realtime["health_checks"][0]["http_health_check"] == {"path": "/healthz"}
    options = realtime["typed_extension_protocol_options"]
    assert "http_protocol_options" in str(options) and "http2" not in str(options)
    tls = realtime["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["alpn_protocols"] == ["http/1.1"]


def test_realtime_sidecar_speaks_http1_with_upgrades(tmp_path: Path) -> None:
    sidecar = configs(LocalProfile(MESH, tmp_path))["sidecar-realtime-0.yaml"]
    hcm = listener(sidecar, "inbound")["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["codec_type"] == "HTTP1"
    assert hcm["upgrade_configs"] == [{"upgrade_type": "websocket"}]
    app = cluster(sidecar, "local_app")
    assert app["health_checks"][0]["http_health_check"]["path"] == "/healthz"
    assert app["circuit_breakers"]["thresholds"][0]["max_connections"] >= 10000


def test_access_logs_never_carry_query_strings(tmp_path: Path) -> None:
    """A browser's WebSocket sends its token as ?access_token=: no log may keep it."""
    for config in compile_static(MESH, LocalProfile(MESH, tmp_path))[0].values():
        text = yaml.safe_dump(config)
        assert "%PATH(NQ:ORIG_OR_PATH)%" in text
        assert "X-ENVOY-ORIGINAL-PATH?:PATH" not in text


def test_edge_routes_carry_each_methods_access_policy(tmp_path: Path) -> None:
    routes = _edge_routes(tmp_path)
    public = routes["/groundwork.catalog.v1.CatalogService/ListEvents"]
    admin = routes["/groundwork.catalog.v1.CatalogService/CreateEvent"]
    login = routes["/groundwork.identity.v1.IdentityService/Login"]
    jwt = "envoy.filters.http.jwt_authn"
    assert public["typed_per_filter_config"][jwt]["disabled"] is True
    assert login["typed_per_filter_config"][jwt]["disabled"] is True
    assert admin["typed_per_filter_config"][jwt]["requirement_name"] == "authenticated"
    rbac = admin["typed_per_filter_config"]["envoy.filters.http.rbac"]["rbac"]["rules"]
    assert "admin" in str(rbac["policies"]["admin"]["principals"])
    assert "envoy.filters.http.rbac" not in public["typed_per_filter_config"]
    # Reads retry on failures after a host was picked; writes only before it was.
    assert "unavailable" in public["route"]["retry_policy"]["retry_on"]
    assert admin["route"]["retry_policy"]["retry_on"] == "connect-failure,refused-stream"


def test_a_paced_poll_skips_the_global_per_user_limit(tmp_path: Path) -> None:
    routes = _edge_routes(tmp_path)
    poll = routes["/groundwork.waitingroom.v1.WaitingRoomService/GetQueueTicket"]
    join = routes["/groundwork.waitingroom.v1.WaitingRoomService/JoinQueue"]
    assert "rate_limits" not in poll["route"]
    assert poll["typed_per_filter_config"]["envoy.filters.http.jwt_authn"] == {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
        "requirement_name": "authenticated",
    }
    assert "x-groundwork-user-id" in str(join["route"]["rate_limits"])
    # Not retried when slow: only when it never reached the service.
    assert "per_try_timeout" not in poll["route"]["retry_policy"]
    assert poll["route"]["retry_policy"]["retry_on"] == "connect-failure,refused-stream"


def test_client_supplied_identity_headers_are_stripped_before_authn(tmp_path: Path) -> None:
    filters = [f["name"] for f in _edge_hcm(tmp_path)["http_filters"]]
    strip = filters.index("envoy.filters.http.header_mutation")
    assert (
        strip
        < filters.index("envoy.filters.http.jwt_authn")
        < filters.index("envoy.filters.http.rbac")
        < filters.index("envoy.filters.http.router")
    )
    removed = _edge_hcm(tmp_path)["http_filters"][strip]["typed_config"]["mutations"]
    # The HTTP-read mark is the edge's own too (set by public_reads_internal).
    assert {m["remove"] for m in removed["request_mutations"] if "remove" in m} == {
        "x-groundwork-user-id",
        "x-groundwork-claims",
        "x-groundwork-admission-claims",
        "x-groundwork-http-read",
    }
    # And names gRPC metadata cannot carry, never a pseudo-header.
    patterns = [
        re.compile(m["remove_on_match"]["key_matcher"]["safe_regex"]["regex"])
        for m in removed["request_mutations"]
        if "remove_on_match" in m
    ]
    for name, dropped in [
        (":path", False),
        ("content-type", False),
        ("fq`|knu", True),
        # Binary metadata a client sends (a service would fail on bad base64).
        ("x-groundwork-user-id-bin", True),
        ("grpc-timeout", False),
    ]:
        assert any(p.fullmatch(name) for p in patterns) is dropped, name


def test_every_listener_of_the_edge_is_hardened(tmp_path: Path) -> None:
    for name in ("edge_http", "edge_https", "edge_http3"):
        hcm = _edge_hcm(tmp_path, name)
        assert hcm["use_remote_address"] is True
        assert hcm["common_http_protocol_options"]["headers_with_underscores_action"] == (
            "REJECT_REQUEST"
        )
        assert hcm["normalize_path"] and hcm["merge_slashes"]
        assert hcm["http2_protocol_options"]["max_concurrent_streams"] == 100


def test_tokens_come_from_the_header_and_from_the_query_only_on_websockets(
    tmp_path: Path,
) -> None:
    jwt = next(
        f["typed_config"]
        for f in _edge_hcm(tmp_path)["http_filters"]
        if f["name"] == "envoy.filters.http.jwt_authn"
    )
    api, live = jwt["providers"]["groundwork"], jwt["providers"]["groundwork_live"]
    assert "from_params" not in api and live["from_params"] == ["access_token"]
    for provider in (api, live, jwt["providers"]["admission"]):
        assert provider["require_expiration"] is True
    assert {h["value_prefix"] for h in api["from_headers"]} == {"Bearer ", "bearer ", "BEARER "}
    # Every other route names the header-only provider's requirements.
    named = {
        r["typed_per_filter_config"][jwt_name].get("requirement_name")
        for r in _edge_hcm(tmp_path)["route_config"]["virtual_hosts"][0]["routes"]
        for jwt_name in ["envoy.filters.http.jwt_authn"]
        if jwt_name in r.get("typed_per_filter_config", {})
    }
    assert named == {None, "authenticated", "admitted", "authenticated_live"}


def test_grpc_routes_need_a_grpc_content_type_and_the_rest_get_415(tmp_path: Path) -> None:
    routes = _edge_hcm(tmp_path)["route_config"]["virtual_hosts"][0]["routes"]
    grpc_routes = [r for r in routes if r["match"].get("path", "").startswith("/groundwork.")]
    assert grpc_routes and all(
        r["match"]["headers"]
        == [{"name": "content-type", "string_match": {"prefix": "application/grpc"}}]
        for r in grpc_routes
    )
    refused = next(r for r in routes if r.get("direct_response", {}).get("status") == 415)
    assert routes.index(refused) > routes.index(grpc_routes[-1])
    assert refused["match"]["headers"][0]["invert_match"] is True
    # Only failures to answer eject an instance, never an answer that is a 500.
    edge = configs(LocalProfile(MESH, tmp_path))["edge.yaml"]
    outliers = cluster(edge, "catalog")["outlier_detection"]
    assert outliers["enforcing_consecutive_5xx"] == 0
    assert outliers["consecutive_gateway_failure"] == 2


def test_idle_connections_and_handshakes_are_bounded(tmp_path: Path) -> None:
    assert _edge_hcm(tmp_path)["common_http_protocol_options"]["idle_timeout"] == "60s"
    edge = configs(LocalProfile(MESH, tmp_path))["edge.yaml"]
    tls_chain = listener(edge, "edge_https")["filter_chains"][0]
    assert tls_chain["transport_socket_connect_timeout"] == "10s"
    filters = {
        name: [f["name"] for f in _edge_hcm(tmp_path, name)["http_filters"]]
        for name in ("edge_http", "edge_https", "edge_http3")
    }
    hsts = "groundwork.strict_transport_security"
    assert hsts not in filters["edge_http"]
    assert hsts in filters["edge_https"] and hsts in filters["edge_http3"]


def test_mesh_description_is_validated() -> None:
    raw = yaml.safe_load(
        Path(__file__).parents[2].joinpath("envoy/groundwork_envoy/mesh.yaml").read_text()
    )
    raw["services"]["catalog"]["instances"] = 0
    with pytest.raises(ValidationError):
        Mesh.model_validate(raw)
    raw["services"]["catalog"]["instances"] = 1
    raw["services"]["catalog"]["replicas"] = 3
    with pytest.raises(ValidationError, match="replicas"):
        Mesh.model_validate(raw)
    del raw["services"]["catalog"]["replicas"]
    raw["services"]["realtime"]["routes"] = []
    with pytest.raises(ValidationError, match="websocket service lists routes"):
        Mesh.model_validate(raw)
    raw["services"]["realtime"]["routes"] = [{"prefix": "/v1/live/x", "access": "ADMIN"}]
    with pytest.raises(ValidationError, match="access"):
        Mesh.model_validate(raw)


@pytest.mark.parametrize(("mode", "deny"), [("open", False), ("closed", True)])
def test_rate_limit_failure_mode_is_rendered(tmp_path: Path, mode: str, deny: bool) -> None:
    assert MESH.ratelimit.failure_mode == "open"  # the documented default
    mesh = MESH.model_copy(
        update={"ratelimit": MESH.ratelimit.model_copy(update={"failure_mode": mode})}
    )
    edge = compile_static(mesh, LocalProfile(mesh, tmp_path))[0]["edge"]
    hcm = listener(edge, "edge_http")["filter_chains"][0]["filters"][0]["typed_config"]
    ratelimit = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ratelimit")
    assert ratelimit["typed_config"]["failure_mode_deny"] is deny


def test_the_edge_decides_nothing_from_a_request_body_it_would_parse_by_hand(
    tmp_path: Path,
) -> None:
    """The waiting room's rule is booking's (it parses the hold as it acts on it):
    the edge verifies an admission token when one comes and forwards its claims,
    and no Lua of its own reads a request's body, but for the gRPC frame check,
    which reads the body's length and the frame's 4-byte length prefix only."""
    edge = configs(LocalProfile(MESH, tmp_path))["edge.yaml"]
    for name in ("edge_http", "edge_https", "edge_http3"):
        hcm = _edge_hcm(tmp_path, name)
        lua = [f for f in hcm["http_filters"] if f["name"].startswith("groundwork.")]
        for found in lua:
            code = json.dumps(found)
            if found["name"] == "groundwork.grpc_one_message":
                assert code.count("getBytes(") == 1 and "getBytes(1, 4)" in code
                continue
            assert ":body(" not in code, found["name"]
        jwt = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")
        admission = jwt["typed_config"]["providers"]["admission"]
        assert admission["forward"] is False
        assert admission["forward_payload_header"] == "x-groundwork-admission-claims"
    # Internal services are never routed at the edge.
    assert "AdmissionService" not in json.dumps(edge)


def test_an_internal_service_is_refused_to_the_edge_by_its_sidecar(tmp_path: Path) -> None:
    sidecar = configs(LocalProfile(MESH, tmp_path))["sidecar-waitingroom-0.yaml"]
    hcm = listener(sidecar, "inbound")["filter_chains"][0]["filters"][0]["typed_config"]
    deny = next(f for f in hcm["http_filters"] if f["name"] == "groundwork.internal_not_from_edge")
    policy = deny["typed_config"]["rules"]["policies"]["internal_from_edge"]
    assert policy["permissions"] == [
        {"url_path": {"path": {"prefix": "/groundwork.waitingroom.v1.AdmissionService/"}}}
    ]
    assert policy["principals"][0]["authenticated"]["principal_name"]["exact"].endswith("/sa/edge")
    identity = next(
        f for f in hcm["http_filters"] if f["name"] == "groundwork.identity_from_edge_only"
    )
    headers = json.dumps(identity)
    assert "x-groundwork-admission-claims" in headers


def test_the_edge_answers_its_own_hosts_and_caches_one_key_per_resource(tmp_path: Path) -> None:
    hcm = _edge_hcm(tmp_path)
    config = hcm["route_config"]
    assert config["ignore_port_in_host_matching"] is True
    api, misdirected = config["virtual_hosts"]
    assert "*" not in api["domains"] and {"localhost", "127.0.0.1"} <= set(api["domains"])
    assert misdirected["domains"] == ["*"]
    assert [r["direct_response"]["status"] for r in misdirected["routes"]] == [421]
    assert misdirected["typed_per_filter_config"]["envoy.filters.http.cache"]["disabled"] is True
    cached = next(r for r in api["routes"] if r.get("route", {}).get("cluster") == "public_reads")
    path_rule = next(h for h in cached["match"]["headers"] if h["name"] == ":path")
    pattern = re.compile(path_rule["string_match"]["safe_regex"]["regex"])
    event = "/v1/events/0b6f3d2e-5c1a-4e8b-9f00-1234567890ab"
    assert pattern.fullmatch(event) and pattern.fullmatch(event + "/availability")
    for invented in (event + "?x=1", "/v1/events/%30b6f3d2e-5c1a-4e8b-9f00-1234567890ab"):
        assert not pattern.fullmatch(invented), invented
    lua = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.lua")
    source = lua["typed_config"]["default_source_code"]["inline_string"]
    assert 'headers:replace(":authority", "localhost")' in source
