"""The local Envoys' admin APIs. Each listens on a Unix socket of mode 0600 in
the state directory (run/admin/), so no other local user can read its stats,
fail its health checks, drain it or stop it; on Kubernetes it is the pod's
loopback. An address is "unix:/path" or "host:port"; these clients speak to
either. (Envoy's Prometheus metrics are public on a port of their own, served
from the admin API's /stats/prometheus alone: see the templates' stats listener.)"""

from __future__ import annotations

from typing import Any

import httpx

SCHEME = "unix:"


def _transport_args(admin: str) -> tuple[str, dict[str, Any]]:
    if admin.startswith(SCHEME):
        return "http://envoy-admin", {"uds": admin.removeprefix(SCHEME)}
    return f"http://{admin}", {}


def client(admin: str, timeout: float = 5) -> httpx.Client:
    base, options = _transport_args(admin)
    return httpx.Client(base_url=base, timeout=timeout, transport=httpx.HTTPTransport(**options))


def async_client(admin: str, timeout: float = 2) -> httpx.AsyncClient:
    base, options = _transport_args(admin)
    return httpx.AsyncClient(
        base_url=base, timeout=timeout, transport=httpx.AsyncHTTPTransport(**options)
    )


def get(admin: str, path: str, **params: str) -> httpx.Response:
    with client(admin) as http:
        return http.get(path, params=params)


def curl(admin: str, path: str) -> str:
    """The shell command that reads `path` of this admin API (for `groundwork up`)."""
    if admin.startswith(SCHEME):
        return f"curl --unix-socket {admin.removeprefix(SCHEME)} http://envoy{path}"
    return f"curl http://{admin}{path}"
