"""Service settings from GROUNDWORK_* environment variables, validated at start.

A bad value stops start-up with a message naming the variable (see `load`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _host_port(value: str) -> str:
    if value.startswith("unix:") and len(value) > len("unix:/"):
        return value  # a Unix domain socket path
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT or unix:/PATH, got {value!r}")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]


class ServiceSettings(BaseSettings):
    """Settings every service process shares. Services subclass to add their own."""

    model_config = SettingsConfigDict(env_prefix="GROUNDWORK_", extra="ignore", frozen=True)

    instance_id: str = Field(default="dev-0", min_length=1, max_length=63)
    # In a pod the app listens on the pod's loopback and only its sidecar reaches it.
    grpc_listen: HostPort = "127.0.0.1:50051"
    database_url: str = Field(
        default="", description="postgresql:// URL of this service's own database"
    )
    # Or a server and a database name (as on Kubernetes, where one Secret holds the
    # server's URL for every service): the URL of that database on that server.
    postgres_url: str = Field(default="", repr=False)
    database_name: str = ""
    redis_url: str = ""
    db_pool_min: int = Field(default=1, ge=0, le=100)
    db_pool_max: int = Field(default=10, ge=1, le=200)
    # How long SIGTERM waits for in-flight calls before cancelling them.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=120)
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # Write the JSON log lines into this file (buffered) instead of stdout.
    log_file: str = ""
    # OTLP/gRPC collector (host:port, e.g. Jaeger's 4317); empty: tracing off.
    otlp_endpoint: str = ""
    # Share of new traces kept (those the edge started are kept or dropped there).
    trace_sampling: float = Field(default=1.0, ge=0, le=1)
    deployment_environment: str = Field(default="local", min_length=1)
    # Prometheus /metrics (host:port); empty: not served.
    metrics_listen: HostPort | None = None

    @model_validator(mode="before")
    @classmethod
    def _database_on_server(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("database_url") and data.get("postgres_url"):
            from groundwork_shared.database import database_url

            if not data.get("database_name"):
                raise ValueError("postgres_url needs database_name (GROUNDWORK_DATABASE_NAME)")
            data = {
                **data,
                "database_url": database_url(data["postgres_url"], data["database_name"]),
            }
        return data


S = TypeVar("S", bound=BaseSettings)
SS = TypeVar("SS", bound=ServiceSettings)


def describe_errors(cls: type[BaseSettings], error: ValidationError) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    lines = []
    from groundwork_shared.database import redact

    for item in error.errors():
        name = prefix + "_".join(str(p) for p in item["loc"]).upper()
        given = item.get("input")
        if isinstance(given, str) and "://" in given:
            given = redact(given)  # a URL's password stays out of the message
        lines.append(f"  {name}: {item['msg']} (got {given!r})")
    return "invalid settings:\n" + "\n".join(lines)


def load(cls: type[S]) -> S:
    """Load settings or exit with a message that names each bad variable."""
    try:
        return cls()
    except ValidationError as error:
        sys.exit(describe_errors(cls, error))


def boot(service: str, cls: type[SS]) -> SS:
    """A service's first step: its settings, validated, and JSON logs configured."""
    from groundwork_shared import logs, metrics, telemetry

    settings = load(cls)
    logs.configure(service, settings.instance_id, settings.log_level, settings.log_file)
    # Before any server or channel exists: instrumentation wraps their constructors.
    telemetry.setup(service, settings)
    if settings.metrics_listen:
        metrics.serve(settings.metrics_listen)
    return settings
