"""The chart's whole life on a real Kubernetes API: install (hook Jobs included),
every Deployment and StatefulSet ready, upgrade with changed values (generated
secrets kept), roll back, uninstall with nothing left.

Without KUBECONFIG it runs against the simulated control plane (tests/infra/kube.py:
real kube-apiserver with RBAC and PodSecurity admission, controller-manager,
scheduler, and kwok's simulated node, where containers never run). With KUBECONFIG
naming a real cluster made by `groundwork kube up kind|minikube`, it also buys a
ticket through the edge (GROUNDWORK_KUBE_EDGE, default http://localhost:30080)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from groundwork_cli.kube import install, uninstall
from tests import chart, edge_flows
from tests.conftest import eventually
from tests.infra.kube import ControlPlane, kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

NAMESPACE = "gw-test"
RELEASE = "gw"


@dataclass
class Cluster:
    kubeconfig: Path
    real: bool

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return kubectl(self.kubeconfig, *args, input=input)

    def objects(self, kinds: str = chart.KINDS) -> list[dict[str, Any]]:
        out = self.kubectl("-n", NAMESPACE, "get", kinds, "-o", "json")
        return list(json.loads(out)["items"])

    def helm(self) -> helm.Config:
        return helm.Config(kubeconfig_path=str(self.kubeconfig), namespace=NAMESPACE)


def _volumes(cluster: Cluster, count: int) -> None:
    """Volumes for the StatefulSets' claims: the simulated cluster has no provisioner."""
    for i in range(count):
        volume = chart.host_volume(f"gw-test-{i}", f"/nonexistent/gw-test-{i}")
        cluster.kubectl("apply", "-f", "-", input=volume)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    named = os.environ.get("KUBECONFIG")
    if named:
        yield Cluster(Path(named), real=True)
        return
    plane = ControlPlane(tmp_path_factory.mktemp("kube"), host="127.82.0.1")
    try:
        plane.up()
        simulated = Cluster(plane.kubeconfig, real=False)
        _volumes(simulated, 2)
        yield simulated
    finally:
        plane.down()


def _hooks(cluster: Cluster) -> dict[str, dict[str, Any]]:
    with cluster.helm() as config:
        release = config.get_all(RELEASE)
    return {h["name"]: h.get("last_run", {}) for h in release["hooks"]}


def _kept_secrets(cluster: Cluster) -> dict[str, Any]:
    secrets = {s["metadata"]["name"]: s["data"] for s in cluster.objects("secrets")}
    return {
        name: secrets[name]
        for name in ("groundwork-mesh-ca", "mesh-booking", "edge-tls", "groundwork-secrets")
    }


def test_install_upgrade_rollback_uninstall(cluster: Cluster) -> None:
    # Install: the namespace enforces the restricted Pod Security Standard, so the
    # API server's PodSecurity admission refuses any pod of ours that breaks it.
    release = install(kubeconfig=str(cluster.kubeconfig), namespace=NAMESPACE, release=RELEASE)
    assert "port-forward service/jaeger-ui" in release["notes"]
    labels = json.loads(cluster.kubectl("get", "namespace", NAMESPACE, "-o", "json"))
    assert labels["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = chart.assert_all_ready(cluster.kubeconfig, NAMESPACE)
    assert workloads["Deployment/catalog"]["spec"]["replicas"] == 2
    assert workloads["Deployment/operator"]["spec"]["replicas"] == 2
    # The chart's CRDs came with it (Helm installs crds/ first), and its peering object.
    for crd in ("trafficpolicies", "streamscalers", "kopfpeerings"):
        assert crd in cluster.kubectl("get", "crd", "-o", "name")
    assert "gw-operator" in cluster.kubectl("-n", NAMESPACE, "get", "kopfpeerings", "-o", "name")
    hooks = _hooks(cluster)
    assert hooks["migrate"]["phase"] == "Succeeded" and hooks["seed"]["phase"] == "Succeeded"
    secrets = _kept_secrets(cluster)

    if cluster.real:
        edge = os.environ.get("GROUNDWORK_KUBE_EDGE", "http://localhost:30080")
        token = edge_flows.new_user_token(edge)
        _, order_id = edge_flows.purchase(edge, token, 0, "A-1")
        assert order_id

    # Upgrade with changed values: more catalog pods, no seeding; the migration
    # hook runs again (pre-upgrade) and every generated secret stays as it was.
    first_migration = hooks["migrate"]["started_at"]
    install(
        {"services": {"catalog": {"replicas": 3}}, "migrations": {"seed": False}},
        kubeconfig=str(cluster.kubeconfig),
        namespace=NAMESPACE,
        release=RELEASE,
    )
    workloads = chart.assert_all_ready(cluster.kubeconfig, NAMESPACE)
    assert workloads["Deployment/catalog"]["spec"]["replicas"] == 3
    hooks = _hooks(cluster)
    assert hooks["migrate"]["phase"] == "Succeeded"
    assert hooks["migrate"]["started_at"] != first_migration
    assert _kept_secrets(cluster) == secrets

    # Roll back to the first revision.
    with cluster.helm() as config:
        config.rollback(RELEASE, version=1, wait="watcher", timeout=300)
        history = config.history(RELEASE)
    assert [r["revision"] for r in history][-1] == 3
    workloads = chart.assert_all_ready(cluster.kubeconfig, NAMESPACE)
    assert workloads["Deployment/catalog"]["spec"]["replicas"] == 2
    assert workloads["Deployment/operator"]["spec"]["replicas"] == 2
    # The chart's CRDs came with it (Helm installs crds/ first), and its peering object.
    for crd in ("trafficpolicies", "streamscalers", "kopfpeerings"):
        assert crd in cluster.kubectl("get", "crd", "-o", "name")
    assert "gw-operator" in cluster.kubectl("-n", NAMESPACE, "get", "kopfpeerings", "-o", "name")
    assert _kept_secrets(cluster) == secrets

    # Uninstall: the release's objects go, and the garbage collector takes what
    # they owned (ReplicaSets, pods, the StatefulSets' claims).
    uninstall(kubeconfig=str(cluster.kubeconfig), namespace=NAMESPACE, release=RELEASE)

    def emptied() -> None:
        left = chart.leftovers(cluster.kubeconfig, NAMESPACE)
        assert not left, sorted(left)

    eventually(emptied, timeout=120, interval=1)
