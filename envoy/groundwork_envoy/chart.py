"""The Helm chart's copy of the mesh: the Kubernetes profile's Envoy configs and
mesh.yaml, written into helm/groundwork/files/ (Helm reads no file outside its
chart). Release-specific values stay as tokens the chart replaces at install, so
one rendering serves every namespace; a test renders the chart and checks that
the result equals this profile rendered for that namespace."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from groundwork_envoy.model import Mesh
from groundwork_envoy.profiles import KubernetesProfile
from groundwork_envoy.render import render, write

NAMESPACE = "__NAMESPACE__"
CLUSTER_DOMAIN = "__CLUSTER_DOMAIN__"
OTLP_HOST = "__OTLP_HOST__"
OTLP_PORT = 4317

CHART_FILES = Path(__file__).resolve().parents[2] / "helm" / "groundwork" / "files"


def profile(
    namespace: str, cluster_domain: str, otlp_host: str, canaries: frozenset[str] = frozenset()
) -> KubernetesProfile:
    """The profile the chart's files are rendered with; the operator renders the
    same one for its release (with the canaries the release runs)."""
    return KubernetesProfile(
        namespace=namespace,
        cluster_domain=cluster_domain,
        otlp_endpoint=f"{otlp_host}:{OTLP_PORT}",
        canaries=canaries,
    )


def chart_files(mesh: Mesh) -> dict[str, str]:
    """Relative path under files/ -> content."""
    configs = render(mesh, profile(NAMESPACE, CLUSTER_DOMAIN, OTLP_HOST))
    files = {f"envoy/{name}": text for name, text in configs.items()}
    files["mesh.yaml"] = (resources.files("groundwork_envoy") / "mesh.yaml").read_text()
    return files


def write_chart_files(mesh: Mesh, directory: Path = CHART_FILES) -> list[Path]:
    """Write the chart's copy, removing Envoy configs the mesh no longer has."""
    files = chart_files(mesh)
    for stale in (directory / "envoy").glob("**/*.yaml"):
        if stale.relative_to(directory).as_posix() not in files:
            stale.unlink()
    return write(files, directory)
