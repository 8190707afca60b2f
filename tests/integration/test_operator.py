"""The operator against a real Kubernetes API (the simulated control plane: real
kube-apiserver, controller-manager and scheduler, kwok's node) and a real Redis.

It runs as a process here, with the chart's own ServiceAccount, Role and
environment: a token of that ServiceAccount is all it has, so a permission the
Role lacks fails these tests. The chart's CRDs are the ones installed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import yaml

from groundwork_cli.kube import CHART
from groundwork_cli.runtime import probes
from groundwork_cli.runtime.embedded import EmbeddedRedis
from tests.chart import by_kind, render
from tests.infra.kube import ControlPlane, kubectl

pytestmark = pytest.mark.timeout(600)

NAMESPACE = "ops"
HOST = "127.83.0.1"
REDIS_HOST = "127.83.0.2"
STREAM = "booking"
GROUP = "ticketing"


class RedisServer:
    """The module's own Redis, so a test may take it away from the operator."""

    def __init__(self, root: Path) -> None:
        self.server = EmbeddedRedis(root, REDIS_HOST, 6379)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.server.url()

    def start(self) -> None:
        self.process = subprocess.Popen(self.server.command(), stdout=subprocess.DEVNULL)
        asyncio.run(probes.wait_until(probes.redis(self.url), 20, "redis"))

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@dataclass
class Env:
    plane: ControlPlane
    chart: list[dict[str, Any]]
    redis: RedisServer
    operator_kubeconfig: Path
    state: Path

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return kubectl(self.plane.kubeconfig, "-n", NAMESPACE, *args, input=input)

    def apply(self, document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_kubectl_base(self.plane.kubeconfig), "-n", NAMESPACE, "apply", "-f", "-"],
            input=yaml.safe_dump(document),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        out = subprocess.run(
            [
                *_kubectl_base(self.plane.kubeconfig),
                "-n",
                NAMESPACE,
                "get",
                kind,
                name,
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(out.stdout) if out.returncode == 0 else None

    def config_maps(self) -> dict[str, dict[str, str]]:
        items = json.loads(self.kubectl("get", "configmaps", "-o", "json"))["items"]
        return {
            c["metadata"]["name"]: c.get("data", {})
            for c in items
            if c["metadata"]["name"].startswith("envoy-")
        }

    def events(self, name: str) -> list[str]:
        out = self.kubectl(
            "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
        )
        return [e["reason"] for e in json.loads(out)["items"]]


def _kubectl_base(kubeconfig: Path) -> list[str]:
    from groundwork_cli.kube import kubectl_bin

    return [str(kubectl_bin()), "--kubeconfig", str(kubeconfig)]


def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.25)


def _operator_kubeconfig(plane: ControlPlane, token: str, path: Path) -> Path:
    """A kubeconfig holding nothing but the operator ServiceAccount's token."""
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    admin["users"] = [{"name": "operator", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "operator"
    path.write_text(yaml.safe_dump(admin))
    path.chmod(0o600)
    return path


def _chart_objects(chart: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the operator needs of a release: its RBAC and peering object, the Envoy
    ConfigMaps, and a consumer Deployment (with its ServiceAccount) to scale."""
    wanted = {
        ("ServiceAccount", "operator"),
        ("Role", "operator"),
        ("RoleBinding", "operator"),
        ("ServiceAccount", "ticketing"),
        ("Deployment", "ticketing"),
    }
    return [
        o
        for o in chart
        if (o["kind"], o["metadata"]["name"]) in wanted
        or o["kind"] == "KopfPeering"
        or (o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("envoy-"))
    ]


def _operator_env(chart: list[dict[str, Any]], redis_url: str, kubeconfig: Path) -> dict[str, str]:
    """The chart's environment for the operator container, its references resolved
    as the kubelet would (the namespace, the Redis Secret)."""
    deployment = by_kind(chart, "Deployment")["operator"]
    env = {"KUBECONFIG": str(kubeconfig), "PATH": os.environ["PATH"]}
    for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = NAMESPACE
        else:
            env[item["name"]] = redis_url
    env["GROUNDWORK_HEALTH_LISTEN"] = f"{HOST}:8080"
    env["GROUNDWORK_SCALER_POLL_SECONDS"] = "1"
    return env


# What kopf logs when a timer ran, when a replica yields to a higher priority and
# when the highest takes over.
TICKED = "Timer 'register.<locals>.tick' succeeded."
PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"


class Operator:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "groundwork_operator"],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._out.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    state = tmp_path_factory.mktemp("operator")
    plane = ControlPlane(state / "kube", host=HOST)
    redis_server = RedisServer(state / "redis")
    try:
        redis_server.start()
        plane.up()
        admin = plane.kubeconfig
        kubectl(admin, "create", "namespace", NAMESPACE)
        for crd in sorted((CHART / "crds").glob("*.yaml")):
            kubectl(admin, "apply", "-f", str(crd))
        for name in ("trafficpolicies.groundwork.dev", "streamscalers.groundwork.dev"):
            kubectl(admin, "wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
        chart = render(namespace=NAMESPACE, release="gw")
        objects = yaml.safe_dump_all(_chart_objects(chart))
        # Server-side: the edge's ConfigMap is larger than the 256 KiB that client-side
        # apply's last-applied annotation may hold (helm, like this, keeps no such copy).
        kubectl(
            admin,
            "-n",
            NAMESPACE,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=objects,
        )
        token = kubectl(admin, "-n", NAMESPACE, "create", "token", "operator").strip()
        kubeconfig = _operator_kubeconfig(plane, token, state / "operator.kubeconfig")
        yield Env(plane, chart, redis_server, kubeconfig, state)
    finally:
        redis_server.stop()
        plane.down()


@pytest.fixture(scope="module")
def operator(env: Env) -> Iterator[Operator]:
    process = Operator(
        _operator_env(env.chart, env.redis.url, env.operator_kubeconfig), env.state / "operator.log"
    )
    try:
        until(lambda: _healthy(), 60, "the operator's liveness endpoint")
        yield process
    finally:
        process.stop()
    # Whatever the tests did, the operator never hit a permission its Role lacks.
    assert "Forbidden" not in process.text() and " 403" not in process.text(), process.text()[
        -3000:
    ]


def _healthy() -> bool:
    import httpx

    try:
        return httpx.get(f"http://{HOST}:8080/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "groundwork.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return resource("TrafficPolicy", name, spec)


def scaler(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return resource("StreamScaler", name, spec)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            policy("a", {"service": "catalog", "split": {"stable": 90, "canary": 5}}),
            "split.stable + split.canary must be 100",
        ),
        (
            policy(
                "b",
                {
                    "service": "catalog",
                    "fault": {"abort": {"percent": 5, "httpStatus": 503, "grpcStatus": 14}},
                },
            ),
            "exactly one of httpStatus or grpcStatus",
        ),
        (policy("c", {"service": "catalog", "fault": {}}), "fault needs a delay, an abort or both"),
        (
            policy(
                "d", {"service": "catalog", "timeout": "1s", "retries": {"perTryTimeout": "2s"}}
            ),
            "retries.perTryTimeout exceeds timeout",
        ),
        (policy("e", {"service": "catalog", "timeout": "soon"}), "spec.timeout"),
        (policy("f", {"service": "catalog", "retry": {}}), 'unknown field "spec.retry"'),
        (policy("g", {"timeout": "1s"}), "spec.service: Required value"),
        (
            policy("h", {"service": "catalog", "retries": {"conditions": ["sometimes"]}}),
            "Unsupported value",
        ),
        (
            scaler(
                "i",
                {
                    "deployment": "ticketing",
                    "stream": "s",
                    "group": "g",
                    "targetLagPerReplica": 10,
                    "minReplicas": 5,
                    "maxReplicas": 2,
                },
            ),
            "minReplicas exceeds maxReplicas",
        ),
        (
            scaler("j", {"deployment": "ticketing", "stream": "s", "group": "g", "maxReplicas": 2}),
            "targetLagPerReplica: Required value",
        ),
    ],
)
def test_the_crds_refuse_invalid_objects(env: Env, document: dict[str, Any], message: str) -> None:
    refused = env.apply(document)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    kind = document["kind"].lower()
    assert env.get(kind, document["metadata"]["name"]) is None


def test_the_crds_default_what_is_left_out(env: Env) -> None:
    applied = env.apply(
        policy("defaults", {"service": "payments", "retries": {}, "outlierDetection": {}})
    )
    assert applied.returncode == 0, applied.stderr
    spec = env.get("trafficpolicy", "defaults")["spec"]  # type: ignore[index]
    assert spec["retries"] == {"conditions": ["5xx", "reset", "connect-failure"], "attempts": 2}
    assert spec["outlierDetection"]["consecutive5xx"] == 5
    env.kubectl("delete", "trafficpolicy", "defaults", "--wait=true")


def _status(env: Env, name: str) -> dict[str, Any]:
    found = env.get("trafficpolicy", name)
    return dict(found.get("status") or {}) if found else {}


def test_a_policy_is_compiled_into_the_envoys_config_maps(env: Env, operator: Operator) -> None:
    original = env.config_maps()
    spec = {
        "service": "catalog",
        "timeout": "2s",
        "fault": {"abort": {"percent": 100, "grpcStatus": 14}},
    }
    assert env.apply(policy("catalog-chaos", spec)).returncode == 0
    status = until(
        lambda: (
            _status(env, "catalog-chaos").get("appliedGeneration") == 1
            and _status(env, "catalog-chaos")
        ),
        what="Applied",
    )
    assert status["phase"] == "Applied"
    assert status["envoys"] == ["edge", "sidecar-booking", "sidecar-catalog"]
    maps = env.config_maps()
    inbound = yaml.safe_load(maps["envoy-catalog"]["rds-inbound.yaml"])["resources"][0]
    app = next(r for r in inbound["virtual_hosts"][0]["routes"] if r["name"] == "app")
    fault = app["typed_per_filter_config"]["envoy.filters.http.fault"]["config"]
    assert fault["abort"]["grpc_status"] == 14
    assert "timeout: 2.000s" in maps["envoy-edge"]["rds-edge_routes.yaml"]
    # Only dynamic files change: the bootstraps (and listeners) stay the chart's.
    for name, data in maps.items():
        assert data["envoy.yaml"] == original[name]["envoy.yaml"]
        assert data["lds.yaml"] == original[name]["lds.yaml"]
    until(lambda: "Applied" in env.events("catalog-chaos"), what="an Applied event")

    # An update is a new generation, applied in turn.
    spec["timeout"] = "3s"
    assert env.apply(policy("catalog-chaos", spec)).returncode == 0
    until(lambda: _status(env, "catalog-chaos").get("appliedGeneration") == 2, what="generation 2")
    assert "timeout: 3.000s" in env.config_maps()["envoy-edge"]["rds-edge_routes.yaml"]

    # A ConfigMap reset behind the operator's back (a `helm upgrade`) is rewritten.
    reset = {"data": {"rds-edge_routes.yaml": original["envoy-edge"]["rds-edge_routes.yaml"]}}
    # From a file: the routes (the web front end inline) are longer than one argument may be.
    patch = env.state / "reset-patch.json"
    patch.write_text(json.dumps(reset))
    env.kubectl("patch", "configmap", "envoy-edge", "--type=merge", "--patch-file", str(patch))
    until(
        lambda: "timeout: 3.000s" in env.config_maps()["envoy-edge"]["rds-edge_routes.yaml"],
        what="repair",
    )

    # An update the compiler refuses leaves the generation before it applied.
    assert (
        env.apply(
            policy("catalog-chaos", {**spec, "split": {"stable": 50, "canary": 50}})
        ).returncode
        == 0
    )
    status = until(
        lambda: (
            _status(env, "catalog-chaos").get("observedGeneration") == 3
            and _status(env, "catalog-chaos")
        ),
        what="generation 3 observed",
    )
    assert status["phase"] == "Invalid" and status["appliedGeneration"] == 2
    assert "catalog has no canary version" in status["message"]
    assert "generation 2 stays applied" in status["message"]
    assert "timeout: 3.000s" in env.config_maps()["envoy-edge"]["rds-edge_routes.yaml"]

    # What the compiler refuses is reported on the policy, in words, and changes nothing.
    assert env.apply(policy("nowhere", {"service": "nope", "timeout": "1s"})).returncode == 0
    assert env.apply(policy("second", {"service": "catalog", "timeout": "9s"})).returncode == 0
    until(lambda: _status(env, "nowhere").get("phase") == "Invalid", what="Invalid")
    until(lambda: _status(env, "second").get("phase") == "Invalid", what="Invalid")
    assert "spec.service 'nope' is not a mesh service" in _status(env, "nowhere")["message"]
    assert "catalog already has TrafficPolicy catalog-chaos" in _status(env, "second")["message"]
    assert "appliedGeneration" not in _status(env, "second")
    until(lambda: "Invalid" in env.events("nowhere"), what="an Invalid event")
    assert "timeout: 9.000s" not in env.config_maps()["envoy-edge"]["rds-edge_routes.yaml"]

    # Deleting every policy puts back exactly what the chart installed; no finalizer
    # holds any of them.
    env.kubectl("delete", "trafficpolicy", "--all", "--wait=true", "--timeout=120s")
    until(lambda: env.config_maps() == original, what="the chart's ConfigMaps back")
    assert env.events("envoy-edge") == []  # events are about policies, not per handler run
    assert json.loads(env.kubectl("get", "trafficpolicies", "-o", "json"))["items"] == []


def _replicas(env: Env) -> int:
    return int(env.get("deployment", "ticketing")["spec"]["replicas"])  # type: ignore[index]


def _scaler_status(env: Env) -> dict[str, Any]:
    found = env.get("streamscaler", "ticketing")
    return dict(found.get("status") or {}) if found else {}


def test_a_stream_scaler_follows_the_groups_lag(env: Env, operator: Operator) -> None:
    client = env.redis.client()
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    spec = {
        "deployment": "ticketing",
        "stream": STREAM,
        "group": GROUP,
        "targetLagPerReplica": 10,
        "minReplicas": 1,
        "maxReplicas": 4,
        "cooldownSeconds": 6,
    }
    assert env.apply(scaler("ticketing", spec)).returncode == 0
    until(lambda: _scaler_status(env).get("lag") == 0, what="the first reading")
    assert _replicas(env) == 1

    # Push the lag past the target: up at once, bounded by maxReplicas.
    for i in range(55):
        client.xadd(STREAM, {"n": str(i)})
    until(lambda: _replicas(env) == 4, what="scale up to 4")
    status = until(
        lambda: _scaler_status(env).get("lag") == 55 and _scaler_status(env), what="status"
    )
    assert status["replicas"] == 4 and status["redis"] == "Reachable"
    scaled_up = datetime.fromisoformat(status["lastScaleTime"])
    until(lambda: "Scaled" in env.events("ticketing"), what="a Scaled event")

    # Drain it: down only once the cooldown since the last change has passed.
    while batch := cast(Any, client.xreadgroup(GROUP, "worker", {STREAM: ">"}, count=100)):
        for _, entries in batch:
            client.xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries])
    status = until(
        lambda: _scaler_status(env).get("lag") == 0 and _scaler_status(env), what="lag 0"
    )
    assert _replicas(env) == 4 and "cooling down" in status["reason"], status
    until(lambda: _replicas(env) == 1, timeout=30, what="scale down to 1")
    # The operator's own record of its two decisions: down no sooner than the cooldown.
    status = until(lambda: _scaler_status(env).get("replicas") == 1 and _scaler_status(env))
    scaled_down = datetime.fromisoformat(status["lastScaleTime"])
    assert (scaled_down - scaled_up).total_seconds() >= 6  # cooldownSeconds


def test_redis_unreachable_holds_the_last_decision(env: Env, operator: Operator) -> None:
    until(lambda: _scaler_status(env).get("redis") == "Reachable", what="a reading")
    before = _replicas(env)
    env.redis.stop()
    try:
        until(lambda: _scaler_status(env).get("redis") == "Unreachable", what="Unreachable")
        status = _scaler_status(env)
        assert f"holding {before} replicas" in status["reason"]
        ticks = operator.text().count(TICKED)
        # Three more ticks without Redis (kopf logs each): nothing moves.
        until(lambda: operator.text().count(TICKED) >= ticks + 3, what="three ticks")
        assert _replicas(env) == before
        assert "RedisUnreachable" in env.events("ticketing")
    finally:
        env.redis.start()
    until(lambda: _scaler_status(env).get("redis") == "Reachable", what="Reachable again")


def test_a_second_replica_waits_for_the_leader(env: Env, operator: Operator) -> None:
    def peers() -> dict[str, Any]:
        return dict((env.get("kopfpeering", "gw-operator") or {}).get("status") or {})

    (first_id,) = peers()
    second_env = _operator_env(env.chart, env.redis.url, env.operator_kubeconfig)
    second_env["GROUNDWORK_HEALTH_LISTEN"] = f"{HOST}:8081"
    paused = operator.text().count(PAUSED)
    second = Operator(second_env, env.state / "operator-2.log")
    try:
        until(lambda: len(peers()) == 2, 60, "both replicas in the peering object")
        priority = {identity: peer["priority"] for identity, peer in peers().items()}
        (second_id,) = set(priority) - {first_id}
        # A mandatory peering starts every replica paused: a second replica of lower
        # priority stays paused without a word; one of higher priority says it resumes,
        # and the first says it pauses.
        if priority[second_id] > priority[first_id]:
            until(lambda: RESUMED in second.text(), 60, "the second replica resumed")
            until(lambda: operator.text().count(PAUSED) > paused, 60, "the first paused")
        # Exactly one of them handles what happens now.
        assert (
            env.apply(policy("leader-check", {"service": "payments", "timeout": "4s"})).returncode
            == 0
        )
        until(lambda: _status(env, "leader-check").get("phase") == "Applied", what="Applied")
        env.kubectl("delete", "trafficpolicy", "leader-check", "--wait=true")
        handled = [
            log for log in (operator.text(), second.text()) if '"name": "leader-check"' in log
        ]
        assert len(handled) == 1
    finally:
        second.stop()


def test_a_deployment_the_role_does_not_name_is_reported(env: Env, operator: Operator) -> None:
    spec = {
        "deployment": "payments",
        "stream": STREAM,
        "group": GROUP,
        "targetLagPerReplica": 5,
        "maxReplicas": 3,
    }
    assert env.apply(scaler("payments", spec)).returncode == 0
    reason = until(
        lambda: (env.get("streamscaler", "payments") or {}).get("status", {}).get("reason"),
        what="a reason",
    )
    assert (
        "may not scale deployment payments: list it in the chart's operator.scalableDeployments"
        in reason
    )
    until(lambda: "DeploymentUnavailable" in env.events("payments"), what="an event")
    env.kubectl("delete", "streamscaler", "payments", "--wait=true", "--timeout=120s")


def test_deleting_a_stream_scaler_leaves_nothing(env: Env, operator: Operator) -> None:
    env.kubectl("delete", "streamscaler", "ticketing", "--wait=true", "--timeout=120s")
    assert json.loads(env.kubectl("get", "streamscalers", "-o", "json"))["items"] == []
    # The Deployment is the user's: it keeps its scale.
    assert _replicas(env) >= 1
