"""Where things are, per profile. Ports come from the mesh; profiles decide addresses.

Local: every service instance gets its own loopback address (as a pod gets its own
IP), so an instance's app and sidecar use the same ports they use in a pod.
Kubernetes: the app listens on the pod's loopback, the sidecar on all interfaces,
and a service's sidecars are found through its headless Service in DNS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from groundwork_envoy.model import Mesh


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int


@dataclass(frozen=True)
class Upstream:
    """A cluster of one service's sidecars, as the edge or another sidecar sees it."""

    discovery: str  # STATIC or STRICT_DNS
    endpoints: list[Endpoint]


@dataclass(frozen=True)
class TlsFiles:
    certificate: str
    private_key: str
    ca: str = ""


TRUST_DOMAIN = "groundwork.local"


@dataclass(frozen=True)
class EnvoyNode:
    """One Envoy of the mesh, as data: its name (config file, process, node id),
    and the service whose traffic it carries (its node cluster): a sidecar's
    service, or "edge". `instance` is the local instance a sidecar fronts (0 on
    Kubernetes, where every replica shares one config)."""

    name: str
    service: str
    instance: int = 0

    @property
    def is_edge(self) -> bool:
        return self.service == "edge"


EDGE = EnvoyNode("edge", "edge")


def spiffe_id(namespace: str, service: str) -> str:
    """A workload's identity in the mesh, carried as the URI SAN of its certificate."""
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service}"


class Profile(Protocol):
    @property
    def name(self) -> str: ...

    def edge_address(self) -> str: ...
    def edge_hosts(self, mesh: Mesh) -> list[str]: ...
    def listen_address(self, service: str, instance: int) -> str: ...
    def admin_target(self, envoy: str, address: str, port: int) -> str: ...
    def app_target(self, mesh: Mesh, service: str, instance: int) -> str: ...
    def upstream(self, mesh: Mesh, service: str) -> Upstream: ...
    def authorities(self, service: str) -> list[str]: ...
    def edge_tls(self) -> TlsFiles: ...
    def mesh_tls(self, service: str) -> TlsFiles: ...
    def identity(self, service: str) -> str: ...
    @property
    def identity_san_type(self) -> str: ...
    def outbound_target(self, mesh: Mesh, service: str, instance: int) -> str: ...
    def sidecars(self, mesh: Mesh) -> list[EnvoyNode]: ...
    def dynamic_dir(self, envoy: str) -> str: ...
    def access_log_path(self, envoy: str) -> str: ...
    def instance_name(self, service: str, instance: int) -> str: ...
    def versions(self, mesh: Mesh, service: str) -> tuple[Upstream, Upstream] | None: ...
    def version(self, mesh: Mesh, service: str, instance: int) -> str: ...
    @property
    def otlp_endpoint(self) -> str: ...
    @property
    def trace_sampling(self) -> float: ...
    @property
    def trace_ui(self) -> str: ...


@dataclass(frozen=True)
class LocalProfile:
    """Loopback addresses: edge on 127.<net>.0.1, instance i of the n-th service
    on 127.<net>.<10+n>.<i+1>. `net` lets a test mesh run beside a developer's."""

    mesh: Mesh
    state_dir: Path
    net: int = 0
    name: str = "local"
    # OTLP/gRPC collector for Envoy's spans (host:port); empty: no tracing.
    otlp_endpoint: str = ""
    trace_sampling: float = 1.0
    # Where a trace id can be looked up (Jaeger's UI), for the web page's links.
    trace_ui: str = ""

    def edge_address(self) -> str:
        return f"127.{self.net}.0.1"

    def edge_hosts(self, mesh: Mesh) -> list[str]:
        return list(dict.fromkeys([*mesh.edge.hosts, self.edge_address()]))

    def listen_address(self, service: str, instance: int) -> str:
        return f"127.{self.net}.{10 + list(self.mesh.services).index(service)}.{instance + 1}"

    def app_target(self, mesh: Mesh, service: str, instance: int) -> str:
        """A Unix socket in a directory only this user can enter: on a shared host
        loopback TCP would let any local process skip the sidecar."""
        return f"unix:{self.state_dir / 'run' / 'apps' / f'{service}-{instance}.sock'}"

    def admin_target(self, envoy: str, address: str, port: int) -> str:
        """A Unix socket (mode 0600, in a 0700 directory): on loopback TCP any
        local user could read the stats, fail the health checks or stop Envoy."""
        return f"unix:{self.state_dir / 'run' / 'admin' / f'{envoy}.sock'}"

    def upstream(self, mesh: Mesh, service: str) -> Upstream:
        return Upstream(
            "STATIC",
            [
                Endpoint(self.listen_address(service, i), mesh.ports.inbound)
                for i in range(mesh.services[service].instances)
            ],
        )

    def authorities(self, service: str) -> list[str]:
        return [service, f"{service}:*"]

    def edge_tls(self) -> TlsFiles:
        pki = self.state_dir / "pki"
        return TlsFiles(str(pki / "edge.crt"), str(pki / "edge.key"))

    def mesh_tls(self, service: str) -> TlsFiles:
        pki = self.state_dir / "pki"
        return TlsFiles(
            str(pki / "mesh" / f"{service}.crt"),
            str(pki / "mesh" / f"{service}.key"),
            str(pki / "ca.crt"),
        )

    def spiffe_id(self, service: str) -> str:
        return spiffe_id("local", service)

    def identity(self, service: str) -> str:
        return self.spiffe_id(service)

    @property
    def identity_san_type(self) -> str:
        return "URI"

    def outbound_target(self, mesh: Mesh, service: str, instance: int) -> str:
        """Where the app sends its calls: a Unix socket beside its own, in the
        directory only this user can enter. On loopback TCP any local process could
        call other services with this instance's mTLS identity."""
        return f"unix:{self.state_dir / 'run' / 'apps' / f'{service}-{instance}.out.sock'}"

    def sidecars(self, mesh: Mesh) -> list[EnvoyNode]:
        """One sidecar per local instance, each with its own config."""
        return [
            EnvoyNode(f"sidecar-{name}-{i}", name, i)
            for name, svc in mesh.services.items()
            for i in range(svc.instances)
        ]

    def dynamic_dir(self, envoy: str) -> str:
        return str(self.state_dir / "envoy" / envoy)

    def access_log_path(self, envoy: str) -> str:
        return str(self.state_dir / "logs" / f"{envoy}.log")  # Layout.log of the process

    def instance_name(self, service: str, instance: int) -> str:
        return f"{service}-{instance}"  # the app's GROUNDWORK_INSTANCE_ID

    def versions(self, mesh: Mesh, service: str) -> tuple[Upstream, Upstream] | None:
        """(stable, canary): a service's last `canary` instances are its canary."""
        svc = mesh.services[service]
        if not svc.canary:
            return None
        every = self.upstream(mesh, service).endpoints
        first_canary = svc.instances - svc.canary
        return Upstream("STATIC", every[:first_canary]), Upstream("STATIC", every[first_canary:])

    def version(self, mesh: Mesh, service: str, instance: int) -> str:
        svc = mesh.services[service]
        if not svc.canary:
            return ""
        return "canary" if instance >= svc.instances - svc.canary else "stable"


@dataclass(frozen=True)
class KubernetesProfile:
    namespace: str = "groundwork"
    cluster_domain: str = "cluster.local"
    tls_dir: str = "/etc/groundwork/tls"
    mesh_tls_dir: str = "/etc/groundwork/mesh"
    name: str = "kubernetes"
    otlp_endpoint: str = ""
    trace_sampling: float = 1.0
    trace_ui: str = ""
    # Services the chart runs a canary Deployment of (services.NAME.canary.replicas).
    canaries: frozenset[str] = frozenset()

    def edge_address(self) -> str:
        return "0.0.0.0"

    def listen_address(self, service: str, instance: int) -> str:
        return "0.0.0.0"

    def app_target(self, mesh: Mesh, service: str, instance: int) -> str:
        # The pod's loopback: only containers of the same pod (its sidecar) reach it.
        return f"127.0.0.1:{mesh.ports.app}"

    def edge_hosts(self, mesh: Mesh) -> list[str]:
        """The edge Service's names (in-cluster clients, the load test), and what
        mesh.yaml adds (localhost: a NodePort mapped by kind, a port-forward)."""
        service = f"edge.{self.namespace}"
        return [
            *mesh.edge.hosts,
            "edge",
            service,
            f"{service}.svc",
            f"{service}.svc.{self.cluster_domain}",
        ]

    def admin_target(self, envoy: str, address: str, port: int) -> str:
        # The admin API can drain and stop Envoy: never on the pod IP.
        return f"127.0.0.1:{port}"

    def _fqdn(self, service: str) -> str:
        return f"{service}-mesh.{self.namespace}.svc.{self.cluster_domain}"

    def upstream(self, mesh: Mesh, service: str) -> Upstream:
        # Headless Service: DNS returns every ready pod, so Envoy balances per pod.
        return Upstream("STRICT_DNS", [Endpoint(self._fqdn(service), mesh.ports.inbound)])

    def authorities(self, service: str) -> list[str]:
        return [service, f"{service}:*", self._fqdn(service), f"{self._fqdn(service)}:*"]

    def edge_tls(self) -> TlsFiles:
        return TlsFiles(f"{self.tls_dir}/tls.crt", f"{self.tls_dir}/tls.key")

    def mesh_tls(self, service: str) -> TlsFiles:
        # Each pod mounts its own service's certificate; the service is implied.
        d = self.mesh_tls_dir
        return TlsFiles(f"{d}/tls.crt", f"{d}/tls.key", f"{d}/ca.crt")

    def identity(self, service: str) -> str:
        """A DNS-form identity (as Linkerd's), carried as a DNS SAN: the chart issues
        mesh certificates with Helm's own functions, which cannot write URI SANs."""
        return f"{service}.{self.namespace}.serviceaccount.identity.{TRUST_DOMAIN}"

    @property
    def identity_san_type(self) -> str:
        return "DNS"

    def outbound_target(self, mesh: Mesh, service: str, instance: int) -> str:
        # The pod's loopback: only the pod's own containers may send with its identity.
        return f"127.0.0.1:{mesh.ports.outbound}"

    def sidecars(self, mesh: Mesh) -> list[EnvoyNode]:
        """Every replica of a service has the same sidecar config: one per service."""
        return [EnvoyNode(f"sidecar-{name}", name) for name in mesh.services]

    def dynamic_dir(self, envoy: str) -> str:
        return "/etc/envoy"  # the Envoy's ConfigMap, mounted

    def access_log_path(self, envoy: str) -> str:
        return "/dev/stdout"  # where the kubelet reads a container's logs

    def instance_name(self, service: str, instance: int) -> str:
        return "%HOSTNAME%"  # the pod's name, as the app's GROUNDWORK_INSTANCE_ID

    def versions(self, mesh: Mesh, service: str) -> tuple[Upstream, Upstream] | None:
        """(stable, canary) of a service the chart runs a canary Deployment for: each
        version has its own headless Service selecting its pods."""
        if service not in self.canaries:
            return None

        def headless(version: str) -> Upstream:
            fqdn = self._fqdn(f"{service}-{version}")
            return Upstream("STRICT_DNS", [Endpoint(fqdn, mesh.ports.inbound)])

        return headless("stable"), headless("canary")

    def version(self, mesh: Mesh, service: str, instance: int) -> str:
        return ""  # one config serves every replica of both versions
