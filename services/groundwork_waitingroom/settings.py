"""Waiting room settings (GROUNDWORK_* variables), on top of the shared ones."""

from __future__ import annotations

from pydantic import Field

from groundwork_shared.settings import ServiceSettings


class WaitingRoomSettings(ServiceSettings):
    # PEM (PKCS#8) Ed25519 private key, base64-encoded: signs admission tokens.
    admission_signing_key: str = Field(default="", repr=False)
    # The edge accepts admission tokens with exactly these (mesh.yaml auth.admission).
    admission_issuer: str = Field(default="https://groundwork.local/waitingroom", min_length=1)
    admission_audience: str = Field(default="groundwork-admission", min_length=1)
    # How often each instance runs an admission round for every room. Rounds are
    # atomic in Redis and credit time, so instances share the rate, not multiply it.
    waitingroom_tick_seconds: float = Field(default=0.25, gt=0, le=10)
    # Adaptive mode: how often booking's latency is read and the rate moved.
    waitingroom_adapt_seconds: float = Field(default=2.0, ge=0.5, le=60)
    # Booking's Prometheus endpoints (comma-separated URLs; a name that resolves
    # to several addresses, like a headless Service, means all of them).
    waitingroom_booking_metrics: str = ""

    def booking_metrics_urls(self) -> list[str]:
        return [u.strip() for u in self.waitingroom_booking_metrics.split(",") if u.strip()]
