"""Settings of the local runtime (`groundwork up` and friends)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_state_dir() -> Path:
    # Root's services conventionally keep state in /var/lib; everyone else in XDG state.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/groundwork")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "groundwork"


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GROUNDWORK_", extra="ignore", frozen=True)

    @field_validator("instances", mode="before")
    @classmethod
    def _instances(cls, value: object) -> object:
        """ "catalog=3,booking=2" (the variable's form) or a mapping."""
        if not isinstance(value, str):
            return value
        result: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, count = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{item!r}: expected SERVICE=COUNT, e.g. catalog=3")
            result[name.strip()] = count.strip()
        return result

    @field_validator("database_url")
    @classmethod
    def _one_name_per_meaning(cls, value: str) -> str:
        if value:
            raise ValueError(
                "GROUNDWORK_DATABASE_URL names one service's own database; the local "
                "runtime takes a Postgres server's admin URL as GROUNDWORK_POSTGRES_URL"
            )
        return value

    state_dir: Path = Field(default_factory=default_state_dir)
    # An existing Postgres server (its admin URL); each service gets its own database
    # on it, as on Kubernetes. Empty: run the embedded Postgres from the wheel.
    postgres_url: str = Field(default="", repr=False)
    # A service's own database (GROUNDWORK_DATABASE_URL): refused here, see below.
    database_url: str = Field(default="", repr=False)
    # An existing Redis server. Empty: run the embedded server from the wheel.
    redis_url: str = ""
    # Second octet of every loopback address of this mesh (127.<net>.x.y), so a
    # second mesh (the tests') can run beside a developer's.
    loopback_net: int = Field(default=0, ge=0, le=255)
    # Override mesh.yaml's per-client token bucket at the edge (load tests from one
    # address want it higher; the rate-limit tests want it low).
    edge_client_rps: int | None = Field(default=None, ge=1)
    edge_client_burst: int | None = Field(default=None, ge=1)
    # Instances per service instead of mesh.yaml's, e.g. "catalog=3,booking=2": the
    # edge and the callers' sidecars balance over them (scale out on one machine).
    instances: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # Worker threads of each sidecar Envoy (0: one per core, Envoy's default). One:
    # a dozen Envoys share this machine's cores, and one worker each used less
    # CPU per request than two (0.28-0.33 ms against 0.32-0.36, BENCHMARKS.md).
    sidecar_workers: int = Field(default=1, ge=0, le=64)
    # Seconds each start-up step may take before `up` gives up and names it.
    start_timeout: float = Field(default=60.0, gt=0, le=600)
    # Traces: an OTLP/gRPC collector (host:port, e.g. Jaeger's 4317) for services
    # and Envoy; or `traces` to run the built-in receiver that `groundwork trace`
    # reads. Neither: tracing is off and costs nothing.
    otlp_endpoint: str = ""
    traces: bool = False
    # Jaeger v2 to run beside the mesh when no endpoint is set: a binary's path, empty
    # for `jaeger` on PATH, or `off`.
    jaeger: str = ""
    trace_sampling: float = Field(default=1.0, ge=0, le=1)
