"""The Helm chart as its tests see it: rendered by Helm's own engine (helm-python-sdk
binds Helm's Go SDK), split into Kubernetes objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from groundwork_cli.kube import CHART
from groundwork_envoy.model import load_mesh
from tests.infra.kube import kubectl

PRODUCTION_VALUES = CHART.parent / "values-production.yaml"
VALUE_SETS: dict[str, Path | dict[str, Any] | None] = {
    "default": None,
    "production": PRODUCTION_VALUES,
    "loadtest": {"loadtest": {"enabled": True, "workers": 2}},
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")
# Every namespaced kind the chart makes (and its workloads make), and what a
# namespace holds before any release: Kubernetes' own.
KINDS = (
    "deployments,statefulsets,replicasets,pods,services,endpointslices,configmaps,secrets,"
    "serviceaccounts,persistentvolumeclaims,jobs,networkpolicies,poddisruptionbudgets,"
    "horizontalpodautoscalers,ingresses,roles,rolebindings"
)
BASELINE = {"configmap/kube-root-ca.crt", "serviceaccount/default"}


def leftovers(kubeconfig: Path, namespace: str) -> set[str]:
    """What the namespace holds beyond its baseline, as kind/name."""
    listed = json.loads(kubectl(kubeconfig, "-n", namespace, "get", KINDS, "-o", "json"))
    names = {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in listed["items"]}
    return names - BASELINE


def assert_all_ready(kubeconfig: Path, namespace: str) -> dict[str, dict[str, Any]]:
    """Every Deployment and StatefulSet the chart makes is there, each with all its
    replicas ready; returns them by Kind/name."""
    listed = json.loads(
        kubectl(kubeconfig, "-n", namespace, "get", "deployments,statefulsets", "-o", "json")
    )
    workloads = {f"{o['kind']}/{o['metadata']['name']}": o for o in listed["items"]}
    expected = {f"Deployment/{n}" for n in [*load_mesh().services, "edge", "jaeger"]}
    expected |= {"StatefulSet/postgres", "StatefulSet/redis"}
    assert expected <= set(workloads), sorted(expected - set(workloads))
    for name, w in workloads.items():
        wanted = w["spec"]["replicas"]
        assert w["status"].get("readyReplicas", 0) == wanted, (name, w["status"])
    return workloads


def host_volume(name: str, path: str) -> str:
    """A PersistentVolume on a host path, for a cluster without a provisioner: the
    StatefulSets' claims bind to such volumes."""
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": path},
        },
    }
    return str(yaml.safe_dump(volume))


def values(name: str) -> dict[str, Any]:
    source = VALUE_SETS[name]
    if isinstance(source, dict):
        return source
    return yaml.safe_load(Path(source).read_text()) if source else {}


def render(
    overrides: dict[str, Any] | None = None, namespace: str = "shop", release: str = "gw"
) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    try:
        manifests = chart.render(
            overrides or {}, name=release, namespace=namespace, is_install=True
        )
    finally:
        chart.close()
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod template) of every workload."""
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
