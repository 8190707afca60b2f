"""The mesh description (mesh.yaml), validated."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ports(_Strict):
    app: int = Field(ge=1, le=65535)
    inbound: int = Field(ge=1, le=65535)
    outbound: int = Field(ge=1, le=65535)
    admin: int = Field(ge=1, le=65535)
    health: int = Field(ge=1, le=65535)  # sidecar: plaintext health for probes
    metrics: int = Field(ge=1, le=65535)  # the app's Prometheus /metrics
    # The sidecar's own Prometheus metrics (its admin API's /stats/prometheus alone).
    envoy_metrics: int = Field(default=15090, ge=1, le=65535)


class ClientRateLimit(_Strict):
    requests_per_second: int = Field(ge=1)
    burst: int = Field(ge=1)


class EdgePorts(_Strict):
    http: int = Field(ge=1, le=65535)
    https: int = Field(ge=1, le=65535)
    admin: int = Field(ge=1, le=65535)
    # The edge's Prometheus metrics (its admin API's /stats/prometheus alone).
    metrics: int = Field(default=9902, ge=1, le=65535)
    client_rate_limit: ClientRateLimit
    # Open WebSockets per client address, across every edge instance (the
    # ratelimit service counts them); one lives at most this long, then the
    # client reconnects (a stream whose edge died stops counting then too).
    websockets_per_client: int = Field(default=20, ge=1, le=10000)
    websocket_max_seconds: int = Field(default=3600, ge=60, le=86400)
    # A connection with no request in flight, and a TLS handshake, may take this long.
    idle_timeout_seconds: int = Field(default=60, ge=1, le=3600)
    handshake_timeout_seconds: int = Field(default=10, ge=1, le=60)
    # The public gRPC service the edge sends server reflection to (each public
    # service answers it for the whole public API).
    reflection: str = "catalog"
    # The host names the edge answers (any port; the profile adds its own
    # addresses and names). Any other Host or :authority is a 421, before any
    # filter that stores something per request (the micro-cache, rate limits).
    hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"])


class RateLimitPolicy(_Strict):
    failure_mode: Literal["open", "closed"]


class Admission(_Strict):
    """The waiting room's admission tokens: their own issuer and audience, sent
    in their own header (beside the access token) on a queued event's holds."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    header: str = Field(pattern=r"^[a-z0-9-]+$")


class Auth(_Strict):
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_cache_seconds: int = Field(ge=10, le=86400)
    admission: Admission


class WebSocketRoute(_Strict):
    """An HTTP path the edge upgrades to a WebSocket for a `websocket` service.
    gRPC methods declare their access in the protos; these declare it here."""

    prefix: str = Field(pattern=r"^/v1/\S+$")
    access: Literal["PUBLIC", "AUTHENTICATED"]


class Service(_Strict):
    instances: int = Field(ge=1, le=50)
    # Locally, the last `canary` instances run as the service's canary version: a
    # TrafficPolicy's split weighs them against the rest (without one, all serve).
    canary: int = Field(default=0, ge=0)
    # grpc: HTTP/2 everywhere, health by grpc.health.v1. websocket: HTTP/1.1 with
    # upgrades on `routes`, health by GET `health_path`.
    protocol: Literal["grpc", "websocket"] = "grpc"
    grpc_services: list[str] = Field(default_factory=list)
    # gRPC services for the mesh alone (their methods declare no access option):
    # the edge routes none of them, and this service's sidecar refuses them from the edge.
    internal_grpc_services: list[str] = Field(default_factory=list)
    routes: list[WebSocketRoute] = Field(default_factory=list)
    health_path: str = "/healthz"
    public: bool = False
    # Mesh identities allowed to call this service ("edge" or service names);
    # its sidecar refuses every other certificate.
    callers: list[str] = Field(default_factory=list)
    # Services that read this one's Prometheus /metrics themselves (not through
    # the mesh: the metrics port is plain HTTP, as Prometheus scrapes it).
    metrics_readers: list[str] = Field(default_factory=list)
    # The circuit breaker of the clusters in front of it (the edge's, the callers'
    # sidecars'): requests in flight to all its instances before the next is
    # refused with 503. None: 1,024 for gRPC, 20,000 for WebSockets (one a socket).
    max_requests: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _protocol_fields(self) -> Service:
        if self.canary >= self.instances:
            raise ValueError("canary instances must leave at least one stable instance")
        if self.protocol == "grpc" and (not self.grpc_services or self.routes):
            raise ValueError("a grpc service lists grpc_services and no routes")
        if self.protocol == "websocket" and (
            self.grpc_services or self.internal_grpc_services or not self.routes
        ):
            raise ValueError("a websocket service lists routes and no grpc_services")
        return self


class Mesh(_Strict):
    ports: Ports
    edge: EdgePorts
    auth: Auth
    ratelimit: RateLimitPolicy
    services: dict[str, Service]

    def public_services(self) -> dict[str, Service]:
        return {name: svc for name, svc in self.services.items() if svc.public}

    def callees(self, caller: str) -> list[str]:
        """The services `caller` may call (whose callers name it)."""
        return [name for name, svc in self.services.items() if caller in svc.callers]

    @model_validator(mode="after")
    def _callers_exist(self) -> Mesh:
        known = {"edge", *self.services}
        for name, svc in self.services.items():
            unknown = set(svc.callers) - known
            if unknown:
                raise ValueError(f"services.{name}.callers: unknown {sorted(unknown)}")
            unknown = set(svc.metrics_readers) - set(self.services)
            if unknown:
                raise ValueError(f"services.{name}.metrics_readers: unknown {sorted(unknown)}")
        reflecting = self.public_services().get(self.edge.reflection)
        if reflecting is None or reflecting.protocol != "grpc":
            name = self.edge.reflection
            raise ValueError(f"edge.reflection: {name} is not a public gRPC service")
        return self

    def metrics_sources(self, reader: str) -> list[str]:
        """The services whose /metrics `reader` reads."""
        return [name for name, svc in self.services.items() if reader in svc.metrics_readers]


def load_mesh(path: Path | None = None) -> Mesh:
    text = (
        path.read_text()
        if path
        else (resources.files("groundwork_envoy") / "mesh.yaml").read_text()
    )
    return Mesh.model_validate(yaml.safe_load(text))
