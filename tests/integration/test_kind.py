"""The chart's whole life on a kind cluster made on this machine by the command a
user runs, `groundwork kube up kind --local DIR`: the chart's images and a kind
node image built here (services/groundwork_cli/kind_node.py), kind's podman
provider, the images loaded with `kind load image-archive`, the chart installed
with values-small-node.yaml. Then, through the edge's NodePort on 127.0.0.1: a
purchase over REST and over native gRPC with signed tickets, the trace whole in
the cluster's Jaeger, a TrafficPolicy applied and lifted by the operator, a
rolling upgrade under a trickle of reads that loses none, the Locust Job, an
uninstall that leaves nothing, and `groundwork kube down kind` that leaves no
container."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import helm_python as helm
import httpx
import pytest

from groundwork.booking.v1 import booking_pb2
from groundwork_cli.kube import CHART, CLUSTER, install, kubectl_bin, merged, uninstall
from tests import chart, edge_flows
from tests.conftest import eventually
from tests.infra import gobuild
from tests.infra.kube import kubectl

# Images and a node image built (or found), a cluster made and the whole chart's
# life on it: a bound, not a figure.
pytestmark = pytest.mark.timeout(2400)

NODE_NAME = f"{CLUSTER}-control-plane"  # kind's name for the cluster's one node
CHART_NAMESPACE = "groundwork"
RELEASE = "groundwork"
EDGE = "127.0.0.1:30080"  # the edge's NodePort, mapped by kind to the node's
SMALL_NODE = CHART / "values-small-node.yaml"


@dataclass(frozen=True)
class Kind:
    kubeconfig: Path

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return kubectl(self.kubeconfig, *args, input=input)


def _groundwork(*args: str, env: dict[str, str]) -> None:
    """The CLI, as a user runs it; its output is shown when it fails."""
    command = [sys.executable, "-m", "groundwork_cli", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=2000)
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-4000:])


def _kind_containers() -> list[str]:
    listed = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}",
         "--filter", f"label=io.x-k8s.kind.cluster={CLUSTER}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.split()


@pytest.fixture(scope="module")
def kind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kind, dict[str, Any]]]:
    programs = gobuild.link_kind_local(tmp_path_factory.mktemp("programs"))
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    assert not _kind_containers(), "a kind cluster of this name is already there"
    try:
        _groundwork("kube", "up", "kind", "--local", str(programs),
                    "--values", str(SMALL_NODE), env=env)  # fmt: skip
        # The values `up` installed with (the images it built and loaded, then the
        # small node's), from the release itself: upgrades keep them.
        with helm.Config(kubeconfig_path=str(kubeconfig), namespace=CHART_NAMESPACE) as config:
            values = dict(config.get_values(RELEASE))
        assert values["image"]["pullPolicy"] == "Never", values["image"]
        yield Kind(kubeconfig), values
    finally:
        _groundwork("kube", "down", "kind", "--local", str(programs), env=env)
    assert not _kind_containers()


def test_the_chart_runs_on_kind(kind: tuple[Kind, dict[str, Any]], tmp_path: Path) -> None:
    cluster, values = kind
    try:
        _chart_life(cluster, values)
    except BaseException:
        _post_mortem(cluster, tmp_path)  # the pods' logs, before teardown takes them
        raise


@contextmanager
def _forwarded(cluster: Kind, target: str, port: int) -> Iterator[str]:
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


def _catalog_pods(cluster: Kind) -> set[str]:
    """The catalog's pods, but those being deleted (draining for their grace period)."""
    out = cluster.kubectl("get", "pods", "-n", CHART_NAMESPACE, "-o", "json",
                          "-l", "app.kubernetes.io/component=catalog")  # fmt: skip
    pods = json.loads(out)["items"]
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def _revision(cluster: Kind) -> int:
    with helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=CHART_NAMESPACE) as config:
        return int(config.history(RELEASE)[-1]["revision"])


def _policy(name: str, spec: str) -> str:
    return (
        "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\n"
        f"metadata: {{name: {name}, namespace: {CHART_NAMESPACE}}}\n"
        f"spec:\n  service: catalog\n{spec}"
    )


def _post_mortem(cluster: Kind, directory: Path) -> None:
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


def _chart_life(cluster: Kind, values: dict[str, Any]) -> None:
    kubeconfig = str(cluster.kubeconfig)
    chart.assert_all_ready(cluster.kubeconfig, CHART_NAMESPACE)
    pods = json.loads(cluster.kubectl("get", "pods", "-n", CHART_NAMESPACE, "-o", "json"))["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {NODE_NAME}
    # The databases' claims were bound by the node's provisioner (local-path).
    claims = json.loads(cluster.kubectl("get", "pvc", "-n", CHART_NAMESPACE, "-o", "json"))
    assert claims["items"] and all(c["status"]["phase"] == "Bound" for c in claims["items"])

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
    # The web front end, from the chart's edge as from the local one.
    page = httpx.get(f"{http}/")
    assert page.status_code == 200 and "/web/app.js" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    # Sidecars find their peers through cluster DNS (headless Services, refreshed
    # every 5 s): a pod that just became ready is reached within seconds, not at
    # once, and until then a call needing it is 503, never a hold half-made.
    booked = eventually(
        lambda: edge_flows.purchase(http, token, 0, edge_flows.available_seat(http, first)),
        timeout=60,
    )
    trace_id, order_id = booked
    assert order_id
    # The other edge replica may not have found catalog yet either (a 503).
    seat = eventually(lambda: edge_flows.available_seat(http, second), timeout=60)
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
        changed = merged(values, {"services": {"catalog": {"logLevel": "DEBUG"}}})
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
    install(merged(changed, {"loadtest": short}), kubeconfig=kubeconfig,
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
