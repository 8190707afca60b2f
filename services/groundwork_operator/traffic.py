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

from groundwork_envoy import chart, compiler
from groundwork_envoy.model import Mesh, load_mesh
from groundwork_envoy.policy import PolicyError, TrafficPolicy, parse
from groundwork_envoy.profiles import EnvoyNode
from groundwork_envoy.render import render_with
from groundwork_operator import kube
from groundwork_operator.settings import OperatorSettings

PLURAL = "trafficpolicies"
# The whole namespace is reconciled at once: log as the operator, not as the
# object whose event happened to trigger it.
logger = logging.getLogger("groundwork_operator.traffic")
ENVOY_LABEL = "groundwork.dev/envoy"  # on the chart's Envoy ConfigMaps


def config_map_name(node: EnvoyNode) -> str:
    """The chart's ConfigMap of an Envoy: envoy-edge, envoy-<service>."""
    return f"envoy-{node.service}"


@dataclass
class Desired:
    config_maps: dict[str, dict[str, str]]  # ConfigMap name -> the dynamic files
    statuses: dict[str, dict[str, Any]]  # policy name -> its status


Candidates = dict[str, tuple[TrafficPolicy | None, TrafficPolicy | None]]


def _candidates(documents: list[dict[str, Any]]) -> tuple[Candidates, dict[str, str]]:
    """name -> (current policy, last applied policy), either None; parse errors."""
    found: Candidates = {}
    errors: dict[str, str] = {}
    for document in documents:
        name = document["metadata"]["name"]
        status = document.get("status") or {}
        fallback = None
        if status.get("appliedSpec") and status.get("appliedGeneration"):
            try:
                fallback = parse(
                    {
                        **document,
                        "metadata": {"name": name, "generation": status["appliedGeneration"]},
                        "spec": status["appliedSpec"],
                    }
                )
            except PolicyError:
                fallback = None
        try:
            current = parse(document)
        except PolicyError as error:
            current = None
            errors[name] = str(error)
        found[name] = (current, fallback)
    return found, errors


def desired(settings: OperatorSettings, mesh: Mesh, documents: list[dict[str, Any]]) -> Desired:
    """An update the compiler refuses does not undo the generation before it: that
    one stays applied (from status.appliedSpec) and the status says both."""
    profile = chart.profile(
        settings.namespace, settings.cluster_domain, settings.otlp_host, settings.canary_services()
    )
    found, errors = _candidates(documents)
    current = [policy for policy, _ in found.values() if policy]
    errors.update(compiler.select(mesh, profile, current).errors)
    # Each policy's current generation, or its last applied one where that is refused.
    chosen = [fallback if name in errors else policy for name, (policy, fallback) in found.items()]
    rendered = render_with(mesh, profile, [policy for policy in chosen if policy])
    for name, message in rendered.outcome.errors.items():  # e.g. a conflict with a kept one
        errors.setdefault(name, message)
    config_maps: dict[str, dict[str, str]] = {}
    for path, text in rendered.files.items():
        envoy, _, file_name = path.partition("/")  # NAME/FILE: an Envoy's dynamic file
        if file_name:  # the bootstraps never change: the chart owns them
            name = config_map_name(rendered.nodes[envoy])
            config_maps.setdefault(name, {})[file_name] = text
    applied = {p.name: p for p in rendered.outcome.applied.values()}
    specs = {d["metadata"]["name"]: d.get("spec") for d in documents}
    statuses: dict[str, dict[str, Any]] = {}
    for document in documents:
        name = document["metadata"]["name"]
        generation = int(document["metadata"].get("generation", 1))
        in_effect = applied.get(name)
        envoys = sorted(rendered.touched.get(name, [])) if in_effect else []
        where = f"applied to {', '.join(envoys) or 'no Envoy (nothing to change)'}"
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "appliedGeneration": in_effect.generation if in_effect else None,
            "envoys": envoys,
        }
        if name in errors:
            kept = f"; generation {in_effect.generation} stays {where}" if in_effect else ""
            status |= {"phase": "Invalid", "message": f"{errors[name]}{kept}"}
        else:
            status |= {"phase": "Applied", "message": where, "appliedSpec": specs[name]}
        statuses[name] = status
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
