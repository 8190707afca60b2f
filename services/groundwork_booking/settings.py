"""Booking's own settings."""

from __future__ import annotations

from pydantic import Field

from groundwork_shared.settings import HostPort, ServiceSettings


class BookingSettings(ServiceSettings):
    hold_ttl_seconds: int = Field(default=300, ge=5, le=3600)
    # An order not paid within this long is cancelled and its seats freed.
    order_payment_seconds: int = Field(default=900, ge=10, le=86400)
    sweep_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # This instance's sidecar, for calls to other services (routed by :authority).
    mesh_outbound: HostPort = "127.0.0.1:15001"
