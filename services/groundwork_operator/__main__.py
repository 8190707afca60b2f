"""python -m groundwork_operator: the operator for the release's namespace.

kopf does the watching, retries, events and peering: replicas of the operator
take random priorities in the KopfPeering object, so exactly one works and the
others wait (kopf freezes all operators of equal priority)."""

from __future__ import annotations

import logging
import random
from typing import Any

import kopf
from redis.asyncio import Redis

from groundwork_operator import kube, streams, traffic
from groundwork_operator.settings import OperatorSettings
from groundwork_shared.settings import load


def main() -> None:
    config = load(OperatorSettings)
    kopf.configure(
        log_format=kopf.LogFormat.JSON, log_refkey="object", verbose=config.log_level == "DEBUG"
    )
    logging.getLogger().setLevel(config.log_level)

    def traffic_state(memo: kopf.Memo) -> traffic.State:
        state: traffic.State = memo["traffic"]
        return state

    def scaler_state(memo: kopf.Memo) -> tuple[Any, Redis]:
        return memo["traffic"].api, memo["redis"]

    @kopf.on.startup()
    async def start(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        settings.peering.priority = random.randint(1, 2**30)
        settings.peering.mandatory = True
        # One namespace, CRDs installed with the chart: no cluster-wide watch of
        # namespaces and CRDs, so no ClusterRole.
        settings.scanning.disabled = True
        # Events are the operator's own (Applied, Invalid, Scaled, RedisUnreachable, ...),
        # not one per log line of every handler run.
        settings.posting.level = logging.INFO
        settings.posting.loggers = False
        # kopf's bookkeeping in annotations: status holds only what users read.
        settings.persistence.finalizer = "groundwork.dev/operator"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="groundwork.dev"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="groundwork.dev"
        )
        memo["traffic"] = traffic.State(config, await kube.api_client())
        memo["redis"] = Redis.from_url(
            config.redis_url or "redis://localhost:6379/0",
            socket_connect_timeout=config.redis_timeout_seconds,
            socket_timeout=config.redis_timeout_seconds,
        )

    @kopf.on.cleanup()
    async def stop(memo: Any, **_: Any) -> None:
        await memo["redis"].aclose()
        await memo["traffic"].api.close()

    traffic.register(traffic_state)
    streams.register(scaler_state, config.scaler_poll_seconds)
    kopf.run(
        namespaces=[config.namespace],
        peering_name=config.peering,
        standalone=False,
        liveness_endpoint=f"http://{config.health_listen}/healthz",
        memo=kopf.Memo(),
    )


if __name__ == "__main__":
    main()
