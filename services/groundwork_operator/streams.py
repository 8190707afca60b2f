"""StreamScaler: a timer per scaler reads its consumer group's lag from Redis and
sets its Deployment's scale by the decision in `scaling`.

Redis unreachable: the scale stays where it is (the last decision holds) and
the status says so; so does a group that does not exist yet. Every change of
scale, and every change of Redis' reachability, is an event on the resource."""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from groundwork_operator import kube, scaling
from groundwork_shared.bus import group_lags

PLURAL = "streamscalers"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _since(status: dict[str, Any]) -> float | None:
    stamp = status.get("lastScaleTime")
    if not stamp:
        return None
    return (_now() - dt.datetime.fromisoformat(stamp)).total_seconds()


async def read_lag(redis: Redis, stream: str, group: str) -> int | None:
    """The group's lag, or None when the stream has no such group."""
    return (await group_lags(redis, stream)).get(group)


async def evaluate(
    body: kopf.Body,
    spec: dict[str, Any],
    status: dict[str, Any],
    namespace: str,
    api: Any,
    redis: Redis,
    logger: Any,
) -> dict[str, Any]:
    """One tick: the new status (the Deployment is scaled here when it must be)."""
    try:
        scaler = scaling.ScalerSpec.model_validate(dict(spec))
    except ValidationError as error:
        reason = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        return {"reason": f"invalid spec: {reason}"}
    try:
        current = await kube.deployment_replicas(api, namespace, scaler.deployment)
    except ApiException as error:
        reason = (
            f"may not scale deployment {scaler.deployment}: list it in the chart's"
            " operator.scalableDeployments"
            if error.status == 403
            else f"cannot read deployment {scaler.deployment}: {error.status} {error.reason}"
        )
        if status.get("reason") != reason:
            kopf.warn(body, reason="DeploymentUnavailable", message=reason)
        return {"reason": reason}
    try:
        lag = await read_lag(redis, scaler.stream, scaler.group)
    except (RedisError, OSError) as error:
        if status.get("redis") != "Unreachable":
            kopf.warn(
                body, reason="RedisUnreachable", message=f"holding {current} replicas: {error}"
            )
        return {
            "redis": "Unreachable",
            "replicas": current,
            "reason": f"Redis unreachable ({error}); holding {current} replicas",
        }
    if status.get("redis") == "Unreachable":
        kopf.info(body, reason="RedisReachable", message="reading the group's lag again")
    if lag is None:
        return {
            "redis": "Reachable",
            "replicas": current,
            "reason": f"stream {scaler.stream} has no group {scaler.group} yet; holding",
        }
    decision = scaling.decide(scaler, lag, current, _since(status))
    update: dict[str, Any] = {
        "redis": "Reachable",
        "lag": lag,
        "replicas": decision.replicas,
        "reason": decision.reason,
    }
    if decision.changes(current):
        await kube.scale_deployment(api, namespace, scaler.deployment, decision.replicas)
        update["lastScaleTime"] = _now().isoformat()
        message = (
            f"{scaler.deployment}: {current} -> {decision.replicas} replicas ({decision.reason})"
        )
        kopf.info(body, reason="Scaled", message=message)
        logger.info(message)
    return update


def register(state_of: Any, interval: float) -> None:
    """`state_of(memo)` gives (api client, Redis client)."""

    @kopf.timer(kube.GROUP, kube.VERSION, PLURAL, interval=interval, initial_delay=0)
    async def tick(
        body: kopf.Body,
        spec: kopf.Spec,
        status: kopf.Status,
        meta: kopf.Meta,
        namespace: str | None,
        patch: kopf.Patch,
        memo: Any,
        logger: Any,
        **_: Any,
    ) -> None:
        assert namespace  # StreamScaler is namespaced
        api, redis = state_of(memo)
        update = await evaluate(body, dict(spec), dict(status), namespace, api, redis, logger)
        update["observedGeneration"] = meta.get("generation")
        patch.status.update(update)
