"""The Helm chart, rendered by Helm's own engine: lint, strict Kubernetes schemas,
policy (restricted Pod Security, probes, resources, pinned images, NetworkPolicy
and PDB coverage) and values.schema.json."""

from __future__ import annotations

import base64
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from groundwork_cli.kube import CHART
from groundwork_cli.runtime.registry import services
from groundwork_envoy.model import load_mesh
from groundwork_envoy.profiles import KubernetesProfile
from tests.chart import VALUE_SETS, by_kind, containers, pod_specs, render, values

# The two newest minor versions whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.36.0", "1.37.0"]


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(values(request.param))


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_helm_lint_is_clean(value_set: str) -> None:
    report = helm.lint(str(CHART), values(value_set), strict=True, namespace="shop")
    findings = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not findings, findings


def test_the_whole_mesh_is_there(rendered: list[dict[str, Any]]) -> None:
    mesh = load_mesh()
    deployments = by_kind(rendered, "Deployment")
    assert set(mesh.services) | {"edge"} <= set(deployments)
    for name in mesh.services:
        pod = deployments[name]["spec"]["template"]["spec"]
        sidecar = pod["initContainers"][0]
        assert sidecar["restartPolicy"] == "Always"  # a native sidecar
        assert sidecar["image"].startswith("envoyproxy/envoy:")
        assert by_kind(rendered, "Service")[f"{name}-mesh"]["spec"]["clusterIP"] == "None"
        assert name in by_kind(rendered, "ServiceAccount")
    hooks = {
        name: j["metadata"].get("annotations", {}).get("helm.sh/hook")
        for name, j in by_kind(rendered, "Job").items()
    }
    assert hooks["migrate"] == "post-install,pre-upgrade"


def test_the_load_test_job_runs_locust_against_the_edge_then_the_check() -> None:
    jobs = by_kind(render(values("loadtest"), namespace="shop"), "Job")
    args = jobs["loadtest-1"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == ["python", "-m", "groundwork_cli.load", "browse"]
    assert args[args.index("--host") + 1] == "http://edge.shop.svc.cluster.local"
    assert args[args.index("--workers") + 1] == "2"
    assert args[args.index("--postgres") + 1] == "$(GROUNDWORK_POSTGRES_URL)"
    assert "loadtest-1" not in by_kind(render(), "Job")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_strictly(rendered: list[dict[str, Any]], version: str) -> None:
    crds = [yaml.safe_load(path.read_text()) for path in sorted((CHART / "crds").glob("*.yaml"))]
    own = {
        (f"{c['spec']['group']}/{v['name']}", c["spec"]["names"]["kind"])
        for c in crds
        for v in c["spec"]["versions"]
    }
    errors = []
    for obj in [*crds, *rendered]:
        if (obj["apiVersion"], obj["kind"]) in own:
            continue  # a custom resource of the chart's own CRDs (the apiserver test checks those)
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert not errors, "\n".join(errors)


def test_the_validation_can_fail() -> None:
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


def _restricted_violations(where: str, pod: dict[str, Any]) -> list[str]:
    problems = []
    pod_security = pod["spec"].get("securityContext", {})
    if pod_security.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod runAsNonRoot")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile")
    for spec_key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod["spec"].get(spec_key):
            problems.append(f"{where}: {spec_key}")
    for volume in pod["spec"].get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"{where}: hostPath volume {volume['name']}")
    for c in containers(pod):
        sc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc["capabilities"].get("add"):
            problems.append(f"{name}: capabilities")
        if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") == 0:
            problems.append(f"{name}: runAsNonRoot")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
    return problems


def test_every_pod_meets_the_restricted_standard(rendered: list[dict[str, Any]]) -> None:
    problems = [p for where, pod in pod_specs(rendered) for p in _restricted_violations(where, pod)]
    assert not problems, problems


def test_the_policy_check_can_fail() -> None:
    pod = {"spec": {"containers": [{"name": "x", "securityContext": {}}]}}
    assert len(_restricted_violations("Pod/x", pod)) >= 6


def test_probes_resources_and_pinned_images_everywhere(rendered: list[dict[str, Any]]) -> None:
    problems = []
    for where, pod in pod_specs(rendered):
        is_job = where.startswith("Job/")
        for c in containers(pod):
            name = f"{where}/{c['name']}"
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    problems.append(f"{name}: {kind}")
            # A Job's container runs to completion: nothing to probe.
            if not is_job and not ("readinessProbe" in c and "livenessProbe" in c):
                problems.append(f"{name}: probes")
            repository, _, tag = c["image"].rpartition(":")
            if not repository or not tag or tag == "latest" or "/" in tag:
                problems.append(f"{name}: image {c['image']} is not pinned")
    assert not problems, problems


def test_services_are_probed_on_grpc_health(rendered: list[dict[str, Any]]) -> None:
    mesh = load_mesh()
    deployments = by_kind(rendered, "Deployment")
    for name, svc in mesh.services.items():
        app = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        if svc.protocol == "grpc":
            probe = app["readinessProbe"]["grpc"]
            assert probe == {"port": mesh.ports.health, "service": svc.grpc_services[0]}
        else:
            assert app["readinessProbe"]["httpGet"]["path"] == svc.health_path


def test_a_terminating_service_pod_serves_on_while_callers_drop_it(
    rendered: list[dict[str, Any]],
) -> None:
    # Callers find pods through cluster DNS, re-resolved every few seconds: a pod
    # that stops the moment it is deleted fails what is still sent to it (the
    # real-node rolling upgrade saw one such read of 322 before this hook).
    deployments = by_kind(rendered, "Deployment")
    delays = set()
    for name in load_mesh().services:
        pod = deployments[name]["spec"]["template"]["spec"]
        delay = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 10 <= delay < pod["terminationGracePeriodSeconds"], (name, delay)
        delays.add(delay)
    # ...and every caller re-resolves well within that delay, whatever TTL the
    # cluster's DNS gives (kubeadm's CoreDNS: 30 s; honoured, kind's holds failed
    # for half a minute after a rolling upgrade).
    checked = 0
    for cds in sorted((CHART / "files" / "envoy").glob("*/cds.yaml")):
        for cluster in yaml.safe_load(cds.read_text())["resources"]:
            if cluster.get("type") != "STRICT_DNS" or cluster["name"] == "otlp":
                continue
            checked += 1
            assert cluster["respect_dns_ttl"] is False, (cds.parent.name, cluster["name"])
            refresh = float(cluster["dns_refresh_rate"].rstrip("s"))
            assert refresh * 2 <= min(delays), (cds.parent.name, cluster["name"], refresh)
    assert checked >= len(load_mesh().services)  # every sidecar's peers, at least


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "the checks read matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_every_pod_is_selected_by_a_network_policy_of_its_own(
    rendered: list[dict[str, Any]],
) -> None:
    policies = by_kind(rendered, "NetworkPolicy")
    if not policies:
        pytest.fail("no NetworkPolicies rendered")
    assert policies["default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    own = [p for name, p in policies.items() if name not in ("default-deny", "allow-dns")]
    for where, pod in pod_specs(rendered):
        labels = pod["metadata"]["labels"]
        assert any(_selects(p["spec"]["podSelector"], labels) for p in own), where


def test_network_policies_allow_only_declared_callers() -> None:
    mesh = load_mesh()
    policies = by_kind(render(), "NetworkPolicy")
    for name, svc in mesh.services.items():
        ingress = policies[name]["spec"].get("ingress", [])
        mesh_rules = [
            r for r in ingress if {"port": mesh.ports.inbound, "protocol": "TCP"} in r["ports"]
        ]
        allowed = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for rule in mesh_rules
            for peer in rule["from"]
        }
        assert allowed == set(svc.callers), name
    # payments is called by booking only: the edge's egress does not reach it.
    edge_targets = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policies["edge"]["spec"]["egress"]
        for peer in rule.get("to", [])
    }
    assert "payments" not in edge_targets and "booking" in edge_targets


def test_every_workload_has_a_disruption_budget(rendered: list[dict[str, Any]]) -> None:
    budgets = list(by_kind(rendered, "PodDisruptionBudget").values())
    for obj in rendered:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert any(_selects(b["spec"]["selector"], labels) for b in budgets), obj["metadata"]


def test_production_values_autoscale_and_use_external_stores() -> None:
    rendered = render(values("production"))
    hpas = by_kind(rendered, "HorizontalPodAutoscaler")
    assert hpas["catalog"]["spec"]["minReplicas"] == 3 and "edge" in hpas
    assert "replicas" not in by_kind(rendered, "Deployment")["catalog"]["spec"]
    assert not by_kind(rendered, "StatefulSet")
    app = by_kind(rendered, "Deployment")["booking"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in app["env"]}
    assert env["GROUNDWORK_POSTGRES_URL"]["valueFrom"]["secretKeyRef"]["name"] == (
        "groundwork-postgres"
    )
    assert env["GROUNDWORK_OTLP_ENDPOINT"]["value"].startswith("otel-collector.observability")


def test_databases_match_the_registry() -> None:
    deployments = by_kind(render(), "Deployment")
    with_database = {
        name
        for name, d in deployments.items()
        if d["spec"]["template"]["metadata"]["labels"].get("groundwork.local/database")
    }
    assert with_database == {n for n, e in services().items() if e.migrations is not None}


def test_mesh_certificates_carry_the_identities_envoy_checks() -> None:
    profile = KubernetesProfile(namespace="shop")
    secrets = by_kind(render(namespace="shop"), "Secret")
    ca = x509.load_pem_x509_certificate(
        base64.b64decode(secrets["groundwork-mesh-ca"]["data"]["tls.crt"])
    )
    for name in ["edge", *load_mesh().services]:
        data = secrets[f"mesh-{name}"]["data"]
        cert = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == [profile.identity(name)]
        assert cert.issuer == ca.subject
        assert base64.b64decode(data["ca.crt"]) == base64.b64decode(
            secrets["groundwork-mesh-ca"]["data"]["tls.crt"]
        )


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"services": {"catalog": {"replicas": -1}}}, "minimum"),
        ({"services": {"checkout": {"replicas": 1}}}, "checkout"),
        ({"edge": {"replicas": 0}}, "minimum"),
        ({"image": {"tag": "latest"}}, "tag"),
        ({"envoy": {"image": {"repository": "envoyproxy/envoy", "tag": "latest"}}}, "tag"),
        ({"serviceDefaults": {"resources": {"requests": {"cpu": "lots"}}}}, "cpu"),
        ({"tracing": {"sampling": 2}}, "sampling"),
        ({"serviceDefaults": {"shutdownDelaySeconds": -1}}, "shutdownDelaySeconds"),
    ],
    ids=[
        "negative-replicas",
        "unknown-service",
        "zero-edge",
        "latest-tag",
        "latest-envoy",
        "bad-quantity",
        "sampling",
        "negative-shutdown-delay",
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(bad: dict[str, Any], words: str) -> None:
    chart = helm.Chart.load(str(CHART))
    try:
        with pytest.raises(helm.HelmError) as caught:
            chart.render(bad, name="gw", namespace="shop", is_install=True)
    finally:
        chart.close()
    assert words in str(caught.value), str(caught.value)


def test_default_values_pass_the_schema() -> None:
    chart = helm.Chart.load(str(CHART))
    try:
        for name in VALUE_SETS:
            chart.validate_schema(values(name))
    finally:
        chart.close()


def test_values_yaml_and_schema_agree_on_the_services() -> None:
    declared = yaml.safe_load((CHART / "values.yaml").read_text())["services"]
    assert set(declared) == set(load_mesh().services)


def test_the_operator_has_a_role_naming_exactly_what_it_touches(
    rendered: list[dict[str, Any]],
) -> None:
    assert not by_kind(rendered, "ClusterRole") and not by_kind(rendered, "ClusterRoleBinding")
    role = by_kind(rendered, "Role")["operator"]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not {"delete", "create", "update"} & set(rule["verbs"]) or rule["resources"] == [
            "events"
        ], rule
    writes = {
        (resource, name)
        for rule in role["rules"]
        if "patch" in rule["verbs"]
        for resource in rule["resources"]
        for name in rule.get("resourceNames", ["*any*"])
    }
    config_maps = {name for name in by_kind(rendered, "ConfigMap") if name.startswith("envoy-")}
    assert {n for r, n in writes if r == "configmaps"} == config_maps
    assert {n for r, n in writes if r == "deployments/scale"} == {
        "ticketing",
        "realtime",
        "catalog",
    }
    assert {n for r, n in writes if r == "kopfpeerings"} == set(by_kind(rendered, "KopfPeering"))
    binding = by_kind(rendered, "RoleBinding")["operator"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "operator", "namespace": "shop"}
    ]


def test_the_operators_environment_is_what_its_settings_read(
    rendered: list[dict[str, Any]],
) -> None:
    from groundwork_operator.settings import OperatorSettings

    deployment = by_kind(rendered, "Deployment")["operator"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    names = {item["name"] for item in container["env"]}
    fields = {f"GROUNDWORK_{name.upper()}" for name in OperatorSettings.model_fields}
    assert names <= fields, names - fields
    required = {
        f"GROUNDWORK_{name.upper()}"
        for name, info in OperatorSettings.model_fields.items()
        if info.is_required()
    }
    assert required <= names
    assert container["args"] == ["python", "-m", "groundwork_operator"]
    assert container["image"] == "groundwork-operator:0.1.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"


def test_a_canary_is_a_second_deployment_with_a_service_per_version() -> None:
    objects = render({"services": {"catalog": {"canary": {"replicas": 1, "tag": "0.2.0"}}}})
    deployments = by_kind(objects, "Deployment")
    canary, stable = deployments["catalog-canary"], deployments["catalog"]
    assert canary["spec"]["replicas"] == 1
    pod = canary["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "catalog"  # the same mesh identity
    assert containers(canary["spec"]["template"])[-1]["image"] == "groundwork:0.2.0"
    assert stable["spec"]["template"]["metadata"]["labels"]["groundwork.dev/version"] == "stable"
    services = by_kind(objects, "Service")
    assert services["catalog-canary-mesh"]["spec"]["selector"]["groundwork.dev/version"] == "canary"
    assert services["catalog-stable-mesh"]["spec"]["selector"]["groundwork.dev/version"] == "stable"
    assert "groundwork.dev/version" not in services["catalog-mesh"]["spec"]["selector"]
    operator = containers(deployments["operator"]["spec"]["template"])[0]
    env = {item["name"]: item.get("value") for item in operator["env"]}
    assert env["GROUNDWORK_CANARIES"] == "catalog"
    # Without a canary, none of it.
    default = render()
    assert "catalog-canary" not in by_kind(default, "Deployment")
    assert "catalog-canary-mesh" not in by_kind(default, "Service")


@pytest.mark.parametrize(
    "overrides",
    [
        {"services": {"catalog": {"canary": {"replicas": -1}}}},
        {"operator": {"scalableDeployments": ["postgres"]}},
        {"operator": {"replicas": 0}},
    ],
)
def test_the_schema_refuses_bad_operator_and_canary_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        render(overrides)
