"""Standard gRPC health checking (grpc.health.v1), driven by dependency probes.

Status is SERVING only while every probe passes, so a sidecar's health check
routes around an instance whose database is unreachable, and NOT_SERVING from
the moment shutdown starts, so traffic drains before the listener closes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from groundwork_shared.telemetry import background

Probe = Callable[[], Awaitable[None]]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

log = logging.getLogger(__name__)


class Health:
    def __init__(self, service_names: Sequence[str], probes: Sequence[Probe] = ()) -> None:
        self.servicer = health_aio.HealthServicer()
        # "" is the whole server, as grpc_health_probe and Kubernetes ask by default.
        self._names = ["", *service_names]
        self._probes = list(probes)
        self._serving: bool | None = None

    async def _set(self, serving: bool) -> None:
        if serving == self._serving:
            return
        self._serving = serving
        for name in self._names:
            await self.servicer.set(name, SERVING if serving else NOT_SERVING)
        log.info("health changed", extra={"serving": serving})

    async def check_once(self) -> bool:
        try:
            with background():  # a probe every two seconds is not worth a trace
                for probe in self._probes:
                    await asyncio.wait_for(probe(), timeout=2)
        except Exception as error:  # any failing dependency means not ready
            log.warning("health probe failed", extra={"error": repr(error)})
            await self._set(False)
            return False
        await self._set(True)
        return True

    async def watch(self, interval: float = 2.0) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(interval)

    async def shutting_down(self) -> None:
        self._serving = False
        await self.servicer.enter_graceful_shutdown()
