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

import functools
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import helm_python as helm
import httpx
import psutil
import pytest
import yaml

from groundwork.booking.v1 import booking_pb2
from groundwork_cli import images
from groundwork_cli.kube import CHART, install, kubectl_bin, namespace_manifest, uninstall
from tests import chart, edge_flows
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
    images.save([*built, pause], archive)
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


CHART_NAMESPACE = "groundwork"
RELEASE = "groundwork"
EDGE = "127.0.0.1:30080"  # the edge's NodePort, through kube-proxy
SMALL_NODE = CHART / "values-small-node.yaml"


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def _volumes(cluster: ControlPlane, root: Path) -> list[str]:
    """A volume for each StatefulSet's claim (this node has no provisioner), in a
    directory owned by the uid the database runs as."""
    names = []
    for store in ("postgres", "redis"):
        path = root / store
        path.mkdir()
        os.chown(path, 999, 999)
        cluster.kubectl("apply", "-f", "-", input=chart.host_volume(f"realnode-{store}", str(path)))
        names.append(f"persistentvolume/realnode-{store}")
    return names


@contextmanager
def _forwarded(cluster: ControlPlane, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward` to `target` (through the API server and the kubelet);
    yields the local base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    command = [kubectl_bin(), "--kubeconfig", str(cluster.kubeconfig), "-n", CHART_NAMESPACE,
               "port-forward", "--address", "127.0.0.1", target, f"{local}:{port}"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{local}"
    finally:
        process.terminate()
        process.wait(10)


class Trickle:
    """One read through the edge every 20 ms, on its own thread, until stopped:
    every answer and every transport failure is kept."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.answers: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=f"http://{EDGE}", timeout=10) as client:
            while not self._stop.wait(0.02):
                try:
                    self.answers.append(client.get(self.path).status_code)
                except httpx.HTTPError as error:
                    self.answers.append(repr(error))

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)


def _catalog_pods(cluster: ControlPlane) -> set[str]:
    """The catalog's pods, but those being deleted (draining for their grace period)."""
    out = cluster.kubectl("get", "pods", "-n", CHART_NAMESPACE, "-o", "json",
                          "-l", "app.kubernetes.io/component=catalog")  # fmt: skip
    pods = json.loads(out)["items"]
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def _revision(cluster: ControlPlane) -> int:
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=CHART_NAMESPACE) as config:
        return int(config.history(RELEASE)[-1]["revision"])


def _policy(name: str, spec: str) -> str:
    return (
        "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\n"
        f"metadata: {{name: {name}, namespace: {CHART_NAMESPACE}}}\n"
        f"spec:\n  service: catalog\n{spec}"
    )


def _post_mortem(cluster: ControlPlane, directory: Path) -> None:
    """Every container's log of the release, written beside the test's files."""
    pods = json.loads(cluster.kubectl("get", "pods", "-n", CHART_NAMESPACE, "-o", "json"))
    for pod in pods["items"]:
        name = pod["metadata"]["name"]
        # The Envoy sidecars are init containers that keep running (native sidecars).
        for container in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
            logs = subprocess.run(
                [kubectl_bin(), "--kubeconfig", str(cluster.kubeconfig), "-n", CHART_NAMESPACE,
                 "logs", name, "-c", container["name"]],
                capture_output=True, text=True,
            )  # fmt: skip
            (directory / f"{name}.{container['name']}.log").write_text(logs.stdout + logs.stderr)


def test_the_chart_runs_on_the_node(node: tuple[Node, list[images.Built]], tmp_path: Path) -> None:
    cluster = node[0].cluster
    try:
        _chart_life(cluster, node[1], tmp_path)
    except BaseException:
        _post_mortem(cluster, tmp_path)  # the pods' logs, before teardown takes them
        raise


def _chart_life(cluster: ControlPlane, built: list[images.Built], tmp_path: Path) -> None:
    volumes = _volumes(cluster, tmp_path)
    values = _merged(yaml.safe_load(SMALL_NODE.read_text()), images.values(built))
    kubeconfig = str(cluster.kubeconfig)
    # Waits for the hooks (migrations, seed) and then every rollout.
    install(values, kubeconfig=kubeconfig, namespace=CHART_NAMESPACE, release=RELEASE, timeout=900)
    chart.assert_all_ready(cluster.kubeconfig, CHART_NAMESPACE)
    pods = json.loads(cluster.kubectl("get", "pods", "-n", CHART_NAMESPACE, "-o", "json"))["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}

    # A purchase over REST and one over native gRPC, through the edge's NodePort.
    http = f"http://{EDGE}"
    token = eventually(lambda: edge_flows.new_user_token(http), timeout=60)

    def seeded() -> list[dict[str, Any]]:
        # The seed Job's events reach the catalog's read model through the bus.
        found = httpx.get(f"{http}/v1/events", params={"page_size": 2}).json().get("events", [])
        assert len(found) == 2, found
        return list(found)

    listed = eventually(seeded, timeout=120)
    first, second = (e["event_id"] for e in listed)
    # Sidecars find their peers through cluster DNS (headless Services, refreshed
    # every 5 s): a pod that just became ready is reached within seconds, not at
    # once, and until then a call needing it is 503, never a hold half-made.
    booked = eventually(
        lambda: edge_flows.purchase(http, token, 0, edge_flows.available_seat(http, first)),
        timeout=60,
    )
    trace_id, order_id = booked
    assert order_id
    seat = edge_flows.available_seat(http, second)
    # Each edge replica fetches the signing keys (JWKS) from identity when it first
    # needs them; just after install that fetch may still fail (401, nothing made).
    paid = eventually(
        lambda: edge_flows.grpc_purchase(EDGE, token, second, seat),
        timeout=60,
        errors=(grpc.RpcError,),
    )
    assert paid.status == booking_pb2.ORDER_STATUS_PAID
    # Each order's ticket, issued from the bus and signed (checked with the public key).
    for order in (order_id, paid.order_id):
        eventually(functools.partial(edge_flows.signed_ticket, http, token, order), timeout=60)

    # The REST purchase's trace, whole, in the cluster's own Jaeger.
    with _forwarded(cluster, "service/jaeger-ui", 16686) as jaeger:
        expected = {"edge", "booking-sidecar", "booking", "payments-sidecar", "payments"}
        expected |= {"catalog", "ticketing"}

        def whole() -> set[str]:
            reply = httpx.get(f"{jaeger}/api/v3/traces/{trace_id}", timeout=10)
            assert reply.status_code == 200, reply.text[:300]
            spans = edge_flows.trace_spans(reply.json())
            services = {s.service for s in spans}
            assert expected <= services, services
            queries = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
            assert {s.service for s in queries} >= {"booking", "payments"}, queries[:3]
            return services

        eventually(whole, timeout=60, errors=(httpx.HTTPError,))

    # A TrafficPolicy through the operator: every catalog call aborted, then restored.
    # The operator rewrites the sidecars' ConfigMap at once; the kubelet brings the
    # mounted file up to date on its own sync (syncFrequency, a minute by default),
    # and Envoy reloads the routes when it changes: up to about a minute each way.
    events = f"{http}/v1/events?page_size=1"
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=_policy(
        "catalog-down", "  fault: {abort: {percent: 100, httpStatus: 503}}\n"
    ))  # fmt: skip
    eventually(lambda: httpx.get(events).status_code == 503, timeout=180, interval=1)
    applied = time.monotonic() - started
    assert "fault filter abort" in httpx.get(events).text
    started = time.monotonic()
    cluster.kubectl("delete", "trafficpolicy", "-n", CHART_NAMESPACE, "catalog-down")
    eventually(lambda: httpx.get(events).status_code == 200, timeout=180, interval=1)
    print(
        f"policy in effect after {applied:.0f} s, lifted after {time.monotonic() - started:.0f} s"
    )

    # A rolling upgrade of the catalog (its pod template changed) under a trickle of
    # reads through the edge: not one of them fails. The list, not one event: the
    # edge micro-caches an event for a second, and every read here must reach a pod.
    before = _catalog_pods(cluster)
    with Trickle("/v1/events?page_size=1") as trickle:
        changed = _merged(values, {"services": {"catalog": {"logLevel": "DEBUG"}}})
        install(changed, kubeconfig=kubeconfig, namespace=CHART_NAMESPACE, release=RELEASE,
                timeout=900)  # fmt: skip
    assert not before & _catalog_pods(cluster)  # every catalog pod replaced
    failed = [a for a in trickle.answers if a != 200]
    assert len(trickle.answers) > 50 and not failed, (len(trickle.answers), failed[:10])
    print(f"rolling upgrade: {len(trickle.answers)} reads through the edge, none failed")

    # Locust inside the cluster as a Job (one per revision): a short buy scenario
    # through the edge's Service, then the correctness check over the databases; the
    # Job succeeds only if both pass.
    short = {"enabled": True, "scenario": "buy", "users": 5, "spawnRate": 5, "duration": "20s"}
    install(_merged(changed, {"loadtest": short}), kubeconfig=kubeconfig,
            namespace=CHART_NAMESPACE, release=RELEASE, timeout=900)  # fmt: skip
    job = f"job/loadtest-{_revision(cluster)}"

    def finished() -> dict[str, Any]:
        status = json.loads(cluster.kubectl("get", job, "-n", CHART_NAMESPACE, "-o", "json"))
        done = status["status"].get("succeeded", 0) + status["status"].get("failed", 0)
        assert done, status["status"]
        return dict(status["status"])

    outcome = eventually(finished, timeout=600, interval=2)
    report = cluster.kubectl("logs", "-n", CHART_NAMESPACE, job)
    assert outcome.get("succeeded") == 1, report[-3000:]
    print(report[-1500:])

    # Uninstall: nothing of the release is left in its namespace.
    uninstall(kubeconfig=kubeconfig, namespace=CHART_NAMESPACE, release=RELEASE)

    def emptied() -> None:
        left = chart.leftovers(cluster.kubeconfig, CHART_NAMESPACE)
        assert not left, sorted(left)

    eventually(emptied, timeout=180, interval=1)
    cluster.kubectl("delete", *volumes)


@pytest.fixture(scope="module", autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    leftover = [
        p.info["name"]
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] in {"kubelet", "kube-proxy", "containerd-shim-runc-v2", "catatonit"}
        or "/run/groundwork-node" in " ".join(p.info["cmdline"] or [])
    ]
    assert not leftover, leftover
    chains = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True)
    assert "KUBE-SERVICES" not in chains.stdout
    bridge = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True, text=True)
    assert bridge.returncode != 0
