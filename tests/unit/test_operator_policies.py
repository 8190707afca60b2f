"""What the operator wants for a namespace's TrafficPolicies: the Envoys' dynamic
files and each policy's status (a pure function of the policies)."""

from __future__ import annotations

from typing import Any

import yaml
from groundwork_operator.settings import OperatorSettings
from groundwork_operator.traffic import desired

from groundwork_envoy.model import load_mesh

MESH = load_mesh()
SETTINGS = OperatorSettings(namespace="shop", otlp_host="jaeger.shop.svc.cluster.local")


def document(name: str, spec: dict[str, Any], generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "groundwork.dev/v1alpha1",
        "kind": "TrafficPolicy",
        "metadata": {"name": name, "generation": generation},
        "spec": spec,
        "status": status,
    }


def edge_routes(want: Any) -> str:
    return str(want.config_maps["envoy-edge"]["rds-edge_routes.yaml"])


def test_every_envoy_config_map_gets_its_dynamic_files_only() -> None:
    want = desired(SETTINGS, MESH, [])
    assert set(want.config_maps) == {"envoy-edge", *(f"envoy-{s}" for s in MESH.services)}
    assert set(want.config_maps["envoy-catalog"]) == {
        "lds.yaml",
        "cds.yaml",
        "rds-inbound.yaml",
        "rds-outbound.yaml",
    }
    assert want.statuses == {}


def test_an_applied_policy_reports_its_generation_and_envoys() -> None:
    spec = {"service": "payments", "timeout": "3s"}
    want = desired(SETTINGS, MESH, [document("pay", spec, generation=4)])
    assert want.statuses["pay"] == {
        "phase": "Applied",
        "message": "applied to sidecar-booking",
        "observedGeneration": 4,
        "appliedGeneration": 4,
        "envoys": ["sidecar-booking"],
        "appliedSpec": spec,
    }
    outbound = yaml.safe_load(want.config_maps["envoy-booking"]["rds-outbound.yaml"])
    routes = [
        r
        for vh in outbound["resources"][0]["virtual_hosts"]
        if vh["name"] == "payments"
        for r in vh["routes"]
    ]
    assert routes[0]["route"]["timeout"] == "3.000s"


def test_an_invalid_update_keeps_the_generation_before_it() -> None:
    good = {"service": "catalog", "timeout": "3s"}
    bad = {"service": "catalog", "timeout": "3s", "split": {"stable": 50, "canary": 50}}
    previous = {"appliedGeneration": 1, "appliedSpec": good}
    want = desired(SETTINGS, MESH, [document("cat", bad, generation=2, **previous)])
    status = want.statuses["cat"]
    assert status["phase"] == "Invalid"
    assert "catalog has no canary version" in status["message"]
    assert "generation 1 stays applied to edge, sidecar-booking" in status["message"]
    assert status["appliedGeneration"] == 1 and "appliedSpec" not in status
    assert "timeout: 3.000s" in edge_routes(want)


def test_an_invalid_first_generation_applies_nothing() -> None:
    want = desired(SETTINGS, MESH, [document("x", {"service": "nope"})])
    assert want.statuses["x"]["phase"] == "Invalid"
    assert want.statuses["x"]["appliedGeneration"] is None
    assert want.config_maps == desired(SETTINGS, MESH, []).config_maps


def test_with_a_canary_the_split_applies() -> None:
    settings = OperatorSettings(
        namespace="shop", otlp_host="jaeger.shop.svc.cluster.local", canaries="catalog"
    )
    spec = {"service": "catalog", "split": {"stable": 80, "canary": 20}}
    want = desired(settings, MESH, [document("cat", spec)])
    assert want.statuses["cat"]["phase"] == "Applied"
    assert (
        "catalog-canary-mesh.shop.svc.cluster.local" in want.config_maps["envoy-edge"]["cds.yaml"]
    )


def test_a_kept_generation_still_holds_its_service() -> None:
    """Another policy for the same service is refused while an older generation of
    the first one stays applied."""
    kept = {"appliedGeneration": 1, "appliedSpec": {"service": "catalog", "timeout": "3s"}}
    bad = {"service": "catalog", "split": {"stable": 50, "canary": 50}}
    want = desired(
        SETTINGS,
        MESH,
        [
            document("a-first", bad, generation=2, **kept),
            document("b-second", {"service": "catalog", "timeout": "9s"}),
        ],
    )
    assert want.statuses["a-first"]["appliedGeneration"] == 1
    assert want.statuses["b-second"]["phase"] == "Invalid"
    assert "catalog already has TrafficPolicy a-first" in want.statuses["b-second"]["message"]
    assert "timeout: 9.000s" not in edge_routes(want)
