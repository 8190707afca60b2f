"""Realtime settings (GROUNDWORK_* variables), on top of the shared ones."""

from __future__ import annotations

from pydantic import Field

from groundwork_shared.settings import HostPort, ServiceSettings


class RealtimeSettings(ServiceSettings):
    # An HTTP/1.1 server (WebSocket upgrades and /healthz), reached only by its sidecar.
    http_listen: HostPort = "127.0.0.1:50051"
    # The stream whose events are fanned out (booking's).
    realtime_stream: str = Field(default="booking", min_length=1)
    # The waiting room's progress, sent to the queue's followers.
    realtime_queue_stream: str = Field(default="waitingroom", min_length=1)
    # Updates waiting for one client; a client that lets more pile up is dropped
    # (close code 1013) instead of growing this process's memory.
    realtime_client_queue: int = Field(default=256, ge=1, le=100_000)
    # A client that sent nothing for this long gets a ping, and is closed
    # without a pong within half of it.
    realtime_ping_seconds: float = Field(default=20.0, gt=0, le=3600)
    # On reconnect, how far back (in stream entries) a replay may scan before it
    # answers "reset: refetch the state" instead.
    realtime_replay_scan_limit: int = Field(default=50_000, ge=1)
    realtime_max_connections: int = Field(default=10_000, ge=1)
