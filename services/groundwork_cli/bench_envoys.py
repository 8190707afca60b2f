"""Envoys the benchmarks start beside the mesh, from the same binary: a direct
response (the ceiling every path is measured against), and bare proxies (one
plaintext hop; a pair joined by mTLS) in front of one app instance, so each
proxy's cost is measured apart from the mesh's filters.

Each is a short YAML text: what it measures should be readable at a glance."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundwork_cli.runtime import probes
from groundwork_cli.runtime.plan import envoy_bin

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
_ROUTER = """
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"""


def _http_filters(filters: list[dict[str, Any]]) -> str:
    """`filters` (each as JSON, which YAML reads), then the router."""
    lines = "".join(f"\n          - {json.dumps(f)}" for f in filters)
    return "\n          http_filters:" + lines + _ROUTER


@dataclass(frozen=True)
class Tls:
    """One identity's files, the same for both ends of the bench's mTLS hop."""

    cert: str
    key: str
    ca: str

    def context(self) -> str:
        return (
            f"common_tls_context: {{tls_certificates: [{{certificate_chain: {{filename: "
            f"{self.cert}}}, private_key: {{filename: {self.key}}}}}], "
            f"validation_context: {{trusted_ca: {{filename: {self.ca}}}}}, "
            f"alpn_protocols: [h2], tls_params: {{tls_minimum_protocol_version: TLSv1_3, "
            f"tls_maximum_protocol_version: TLSv1_3}}}}"
        )


def _admin(address: str, admin: int) -> str:
    return f"admin: {{address: {{socket_address: {{address: {address}, port_value: {admin}}}}}}}"


def _socket(target: str) -> str:
    if target.startswith("unix:"):
        return f"{{pipe: {{path: {target.removeprefix('unix:')}}}}}"
    host, _, port = target.rpartition(":")
    return f"{{socket_address: {{address: {host}, port_value: {port}}}}}"


def _listener(
    name: str,
    address: str,
    port: int,
    admin: int,
    route: str,
    tls: str = "",
    filters: list[dict[str, Any]] | None = None,
) -> str:
    """An admin endpoint and one listener: HCM, `route` for every path, `filters`
    and the router."""
    return f"""
{_admin(address, admin)}
static_resources:
  listeners:
  - name: {name}
    address: {_socket(f"{address}:{port}")}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": {_HCM}.HttpConnectionManager
          stat_prefix: {name}
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: {name}
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                {route}{_http_filters(filters or [])}{tls}
"""


def direct_response(
    address: str, port: int, admin: int, body: str, filters: list[dict[str, Any]] | None = None
) -> str:
    """An Envoy that answers every request with `body` itself: the ceiling, or
    with `filters` before its answer, what they cost."""
    answer = f"direct_response: {{status: 200, body: {{inline_string: {json.dumps(body)}}}}}"
    return _listener("direct", address, port, admin, answer, filters=filters)


def _transport_socket(context: str, setting: str, tls: Tls, indent: int) -> str:
    """A TLS transport socket (a listener's or a cluster's), `indent` deep."""
    lines = [
        "transport_socket:",
        "  name: envoy.transport_sockets.tls",
        "  typed_config:",
        f'    "@type": {_TLS}.{context}',
        f"    {setting}",
        f"    {tls.context()}",
    ]
    return "".join("\n" + " " * indent + line for line in lines)


def proxy(
    address: str,
    port: int,
    admin: int,
    upstream: str,
    downstream_tls: Tls | None = None,
    upstream_tls: Tls | None = None,
) -> str:
    """One bare HTTP/2 hop (HCM and router, nothing else) to `upstream`
    (host:port or unix:/path), each side optionally mTLS."""
    listener_tls = cluster_tls = ""
    if downstream_tls:
        listener_tls = _transport_socket(
            "DownstreamTlsContext", "require_client_certificate: true", downstream_tls, 6
        )
    if upstream_tls:
        cluster_tls = _transport_socket("UpstreamTlsContext", "sni: bench", upstream_tls, 4)
    route = "route: {cluster: upstream, timeout: 15s}"
    return (
        _listener("proxy", address, port, admin, route, listener_tls)
        + f"""\
  clusters:
  - name: upstream
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {_socket(upstream)}}}{cluster_tls}
"""
    )


def tcp_proxy(address: str, port: int, admin: int, upstream: str) -> str:
    """One bare L4 hop: bytes copied to `upstream`, no HTTP parsed (tcp_proxy)."""
    return f"""
{_admin(address, admin)}
static_resources:
  listeners:
  - name: tcp
    address: {_socket(f"{address}:{port}")}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: upstream
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {_socket(upstream)}}}
"""


# `running`'s argument: name -> (config, admin host:port); the admin port is the next one.
Configs = dict[str, tuple[str, str]]


def tcp_proxy_config(name: str, address: str, port: int, upstream: str) -> Configs:
    return {name: (tcp_proxy(address, port, port + 1, upstream), f"{address}:{port + 1}")}


def direct_config(
    address: str,
    port: int,
    body: str,
    filters: list[dict[str, Any]] | None = None,
    name: str = "direct",
) -> Configs:
    config = direct_response(address, port, port + 1, body, filters)
    return {name: (config, f"{address}:{port + 1}")}


def proxy_config(
    name: str,
    address: str,
    port: int,
    upstream: str,
    downstream_tls: Tls | None = None,
    upstream_tls: Tls | None = None,
) -> Configs:
    config = proxy(address, port, port + 1, upstream, downstream_tls, upstream_tls)
    return {name: (config, f"{address}:{port + 1}")}


@dataclass(frozen=True)
class Started:
    name: str
    pid: int


@contextlib.contextmanager
def running(configs: Configs) -> Iterator[dict[str, Started]]:
    """Start one Envoy per config (name -> (YAML, admin host:port)), wait until
    each is ready, stop them all on the way out."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory() as directory:
        try:
            for name, (config, _) in configs.items():
                path = Path(directory) / f"{name}.yaml"
                path.write_text(config)
                processes[name] = subprocess.Popen(
                    [str(envoy_bin()), "-c", str(path), "--disable-hot-restart", "-l", "warn"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            for name, (_, admin) in configs.items():
                asyncio.run(probes.wait_until(probes.http_health(admin, "/ready"), 30, name))
            yield {name: Started(name, p.pid) for name, p in processes.items()}
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(timeout=20)
