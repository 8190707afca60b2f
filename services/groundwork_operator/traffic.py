"""TrafficPolicy: every policy of the namespace compiled (by the renderer the local
mesh uses) into the dynamic files of the Envoys' ConfigMaps, and each policy's
status. The kubelet swaps the new files into the pods; Envoy reloads them live.

Always the whole namespace at once: a policy's effect is a function of all the
policies, so a deletion is just another recompile (no finalizer needed), and a
ConfigMap reset by `helm upgrade` is rewritten as soon as it changes."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from groundwork_envoy import chart
from groundwork_envoy.model import Mesh, load_mesh
from groundwork_envoy.policy import PolicyError, TrafficPolicy, parse
from groundwork_envoy.render import render_with
from groundwork_operator import kube
from groundwork_operator.settings import OperatorSettings

PLURAL = "trafficpolicies"
# The whole namespace is reconciled at once: log as the operator, not as the
# object whose event happened to trigger it.
logger = logging.getLogger("groundwork_operator.traffic")
ENVOY_LABEL = "groundwork.dev/envoy"  # on the chart's Envoy ConfigMaps


def config_map_name(envoy: str) -> str:
    """The chart's ConfigMap of an Envoy: envoy-edge, envoy-<service>."""
    return f"envoy-{envoy.removeprefix('sidecar-')}"


@dataclass
class Desired:
    config_maps: dict[str, dict[str, str]]  # ConfigMap name -> the dynamic files
    statuses: dict[str, dict[str, Any]]  # policy name -> its status


def desired(settings: OperatorSettings, mesh: Mesh, documents: list[dict[str, Any]]) -> Desired:
    policies: list[TrafficPolicy] = []
    errors: dict[str, str] = {}
    generations = {}
    for document in documents:
        name = document["metadata"]["name"]
        generations[name] = int(document["metadata"].get("generation", 1))
        try:
            policies.append(parse(document))
        except PolicyError as error:
            errors[name] = str(error)
    profile = chart.profile(
        settings.namespace, settings.cluster_domain, settings.otlp_host, settings.canary_services()
    )
    rendered = render_with(mesh, profile, policies)
    errors.update(rendered.outcome.errors)
    config_maps: dict[str, dict[str, str]] = {}
    for path, text in rendered.files.items():
        envoy, _, file_name = path.partition("/")
        if file_name:  # the bootstraps never change: the chart owns them
            config_maps.setdefault(config_map_name(envoy), {})[file_name] = text
    statuses = {}
    for name, generation in generations.items():
        if name in errors:
            statuses[name] = {
                "phase": "Invalid",
                "message": errors[name],
                "observedGeneration": generation,
            }
        else:
            envoys = sorted(rendered.touched.get(name, []))
            statuses[name] = {
                "phase": "Applied",
                "message": f"applied to {', '.join(envoys) or 'no Envoy (nothing to change)'}",
                "observedGeneration": generation,
                "appliedGeneration": generation,
                "envoys": envoys,
            }
    return Desired(config_maps, statuses)


@dataclass
class State:
    settings: OperatorSettings
    api: Any  # kubernetes_asyncio ApiClient
    mesh: Mesh = field(default_factory=load_mesh)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    synced_at: float = -1.0


async def reconcile(state: State) -> None:
    """Bring ConfigMaps and statuses to what the policies say. Events arrive in
    bursts: a run that started after this call was asked for already covers it."""
    asked = time.monotonic()
    async with state.lock:
        if state.synced_at > asked:
            return
        started = time.monotonic()
        await _reconcile(state)
        state.synced_at = started


async def _reconcile(state: State) -> None:
    namespace = state.settings.namespace
    documents = await kube.list_objects(state.api, namespace, PLURAL)
    want = await asyncio.to_thread(desired, state.settings, state.mesh, documents)
    for name, data in want.config_maps.items():
        current = await kube.config_map_data(state.api, namespace, name)
        changed = {key: text for key, text in data.items() if current.get(key) != text}
        if changed:
            await kube.patch_config_map_data(state.api, namespace, name, changed)
            logger.info(f"configmap/{name}: rewrote {', '.join(sorted(changed))}")
    for document in documents:
        name = document["metadata"]["name"]
        status = want.statuses[name]
        current = document.get("status") or {}
        if all(current.get(key) == value for key, value in status.items()):
            continue
        await kube.patch_status(state.api, namespace, PLURAL, name, status)
        body = cast(kopf.Body, document)  # kopf reads only its apiVersion, kind, metadata
        if status["phase"] == "Applied":
            kopf.info(body, reason="Applied", message=status["message"])
        else:
            kopf.warn(body, reason="Invalid", message=status["message"])
        logger.info(f"trafficpolicy/{name}: {status['phase']}: {status['message']}")


def register(state_of: Any) -> None:
    """Handlers; `state_of(memo)` gives the operator's State."""

    @kopf.on.event(kube.GROUP, kube.VERSION, PLURAL)
    async def policy_changed(memo: kopf.Memo, **_: Any) -> None:
        await reconcile(state_of(memo))

    @kopf.on.event("", "v1", "configmaps", labels={ENVOY_LABEL: kopf.PRESENT})
    async def envoy_config_changed(memo: kopf.Memo, **_: Any) -> None:
        await reconcile(state_of(memo))
