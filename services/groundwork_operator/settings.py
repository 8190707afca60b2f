"""The operator's settings (GROUNDWORK_* variables, set by the chart)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GROUNDWORK_", extra="ignore", frozen=True)

    # The release's namespace: the operator watches and writes only here.
    namespace: str = Field(min_length=1)
    # What the chart rendered its Envoy configs with, so the operator's renderings
    # of the same Envoys differ only by the policies.
    cluster_domain: str = "cluster.local"
    otlp_host: str = Field(min_length=1)
    # Services the release runs a canary Deployment of, comma-separated.
    canaries: str = ""
    redis_url: str = Field(default="", repr=False)
    # How often each StreamScaler reads its group's lag.
    scaler_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    redis_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    peering: str = Field(default="groundwork", min_length=1)
    # kopf's liveness endpoint (the chart's probes).
    health_listen: str = "0.0.0.0:8080"
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    def canary_services(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.canaries.split(",") if name.strip())
