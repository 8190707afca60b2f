"""The Helm chart as its tests see it: rendered by Helm's own engine (helm-python-sdk
binds Helm's Go SDK), split into Kubernetes objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from groundwork_cli.kube import CHART

PRODUCTION_VALUES = CHART.parent / "values-production.yaml"
VALUE_SETS: dict[str, Path | dict[str, Any] | None] = {
    "default": None,
    "production": PRODUCTION_VALUES,
    "loadtest": {"loadtest": {"enabled": True, "workers": 2}},
}
WORKLOADS = ("Deployment", "StatefulSet", "Job")


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
