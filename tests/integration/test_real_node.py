"""A real Kubernetes node on this machine (tests/infra/node.py): kubelet and
kube-proxy built from the Go module proxy, Debian's containerd, runc and CNI
bridge, beside the control plane the chart tests use. Images built here
(`groundwork kube images`) are imported into the node's containerd; pods of the
services' image then run for real in a namespace that enforces the restricted
Pod Security Standard: Ready by their probes, exec and logs, a ClusterIP Service
through kube-proxy, a NodePort on 127.0.0.1, pod to pod, Services by name
through CoreDNS. Teardown leaves no
process, iptables chain or bridge behind."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
import yaml

from groundwork_cli import images
from groundwork_cli.kube import kubectl_bin, namespace_manifest
from tests.conftest import eventually
from tests.infra import gobuild
from tests.infra.kube import ControlPlane
from tests.infra.node import BRIDGE, GATEWAY, NODE_NAME, Node, make_bridge

NAMESPACE = "realnode"
NODE_PORT = 30081

# Images built (or found), a node started and the whole chart's life on it: a bound, not a figure.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, list[images.Built]]]:
    built = images.build_all(gobuild.binary("jaeger"))
    pause = images.build(images.pause_image(), images.base_image())
    archive = tmp_path_factory.mktemp("images") / "images.tar"
    images.save((entry.reference for entry in [*built, pause]), archive)
    make_bridge()
    cluster = ControlPlane(tmp_path_factory.mktemp("realnode"), host=GATEWAY, simulated=False)
    running = Node(cluster, pause.reference)
    try:
        cluster.up()
        running.up()
        running.load(archive)
        cluster.kubectl("apply", "-f", "-", input=namespace_manifest(NAMESPACE))
        yield running, built
        # Pods deleted the way a cluster deletes them: the kubelet tears down their
        # sandboxes, volumes and network.
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
    finally:
        running.down()
        cluster.down()
    assert not running.mounts()


def _workload(image: str) -> str:
    labels = {"app": "hello"}
    security = {
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "hello", "namespace": NAMESPACE},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": ["python", "-m", "http.server", "8000", "-d", "/opt"],
                            "ports": [{"containerPort": 8000}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": 8000},
                                "periodSeconds": 1,
                            },
                            "securityContext": security,
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": NAMESPACE},
        "spec": {
            "type": "NodePort",
            "selector": labels,
            "ports": [{"port": 80, "targetPort": 8000, "nodePort": NODE_PORT}],
        },
    }
    return yaml.safe_dump_all([deployment, service])


def _pods(cluster: ControlPlane) -> list[dict[str, Any]]:
    text = cluster.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app=hello", "-o", "json")
    return list(json.loads(text)["items"])


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_pods_run_for_real_on_the_node(node: tuple[Node, list[images.Built]]) -> None:
    running, built = node
    image = built[0].reference  # the services' image
    cluster = running.cluster
    info = json.loads(cluster.kubectl("get", "node", NODE_NAME, "-o", "json"))["status"]
    assert info["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert info["nodeInfo"]["kubeletVersion"] == "v1.37.2"

    cluster.kubectl("apply", "-f", "-", input=_workload(image))

    def both_ready() -> list[dict[str, Any]]:
        ready = [p for p in _pods(cluster) if _ready(p)]
        assert len(ready) == 2, ready
        return ready

    pods = eventually(both_ready, timeout=120)
    names = [p["metadata"]["name"] for p in pods]
    addresses = [p["status"]["podIP"] for p in pods]
    assert all(a.startswith("10.244.0.") for a in addresses)

    # exec and logs go through the kubelet, as a user's kubectl would.
    uid = cluster.kubectl("exec", "-n", NAMESPACE, names[0], "--", "python", "-c",
                          "import os; print(os.getuid())")  # fmt: skip
    assert uid.strip() == "10001"
    fetch = f"import urllib.request as u; print(u.urlopen('http://{addresses[1]}:8000/').status)"
    assert cluster.kubectl(
        "exec", "-n", NAMESPACE, names[0], "--", "python", "-c", fetch
    ).strip() == ("200")  # pod to pod
    assert '"GET / HTTP/1.1" 200' in cluster.kubectl("logs", "-n", NAMESPACE, names[1])

    # Through kube-proxy: the ClusterIP, and the NodePort on this machine's loopback.
    service = json.loads(cluster.kubectl("get", "service", "-n", NAMESPACE, "hello", "-o", "json"))
    cluster_ip = service["spec"]["clusterIP"]
    reached = (httpx.HTTPError,)
    eventually(
        lambda: httpx.get(f"http://{cluster_ip}/", timeout=2).status_code == 200,
        timeout=60,
        errors=reached,
    )
    # Cluster DNS (CoreDNS from the API server): Services by name, from a pod.
    resolve = "import socket as s; print(*map(s.gethostbyname, ['hello', 'kubernetes.default']))"
    names_seen = cluster.kubectl("exec", "-n", NAMESPACE, names[0], "--", "python", "-c", resolve)
    assert names_seen.split() == [cluster_ip, "10.96.0.1"]
    by_name = "import urllib.request as u; print(u.urlopen('http://hello/').status)"
    assert cluster.kubectl(
        "exec", "-n", NAMESPACE, names[0], "--", "python", "-c", by_name
    ).strip() == ("200")  # a pod to a Service, by name
    eventually(
        lambda: httpx.get(f"http://127.0.0.1:{NODE_PORT}/", timeout=2).status_code == 200,
        timeout=60,
        errors=reached,
    )

    # The restricted standard is enforced here: a pod that may run as root is refused.
    rootful = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rootful", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "Never"}]},
    }
    refused = subprocess.run(
        [kubectl_bin(), "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", "-"],
        input=yaml.safe_dump(rootful),
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "PodSecurity" in refused.stderr, refused.stderr


def _ours(process: psutil.Process, programs: tuple[str, ...]) -> bool:
    """A process of this node: its programs, its containerd's shims, or a pod's
    process in the node's cgroups (a kind node's pods, in a container, are not)."""
    command = " ".join(process.info["cmdline"] or [])
    if "/run/groundwork-node" in command or command.startswith(programs):
        return True
    try:
        with open(f"/proc/{process.pid}/cgroup") as cgroups:
            return any(line.split(":", 2)[2].startswith("/kubepods") for line in cgroups)
    except OSError:
        return False


@pytest.fixture(scope="module", autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    programs = (str(gobuild.binary("kubelet")), str(gobuild.binary("kube-proxy")))
    processes = psutil.process_iter(["name", "cmdline"])
    leftover = [p.info["name"] for p in processes if _ours(p, programs)]
    assert not leftover, leftover
    chains = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True)
    assert "KUBE-SERVICES" not in chains.stdout
    bridge = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, text=True)
    assert bridge.returncode != 0
