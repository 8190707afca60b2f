"""The local mesh's stored TrafficPolicies: a file that is no longer a policy the
mesh can run is reported, never a reason for `up` to fail."""

from __future__ import annotations

from pathlib import Path

from groundwork_cli.runtime import policies
from groundwork_cli.runtime.plan import Plan, build
from groundwork_cli.runtime.settings import RuntimeSettings

GOOD = """apiVersion: groundwork.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: good}
spec: {service: payments, timeout: 2s}
"""


def _plan(tmp_path: Path) -> Plan:
    return build(RuntimeSettings.model_validate({"state_dir": tmp_path, "loopback_net": 9}))


def test_stored_policies_that_cannot_apply_are_reported(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    applied, _ = policies.apply(plan, GOOD)
    assert applied.generation == 1
    # Edited by hand afterwards: one is not YAML, one names no mesh service.
    (plan.layout.policies / "broken.yaml").write_text("spec: [")
    (plan.layout.policies / "gone.yaml").write_text(
        GOOD.replace("name: good", "name: gone").replace("payments", "shipping")
    )
    reasons = policies.review(plan).not_applied
    assert set(reasons) == {"broken", "gone"}
    assert "not YAML" in reasons["broken"]
    assert "spec.service 'shipping' is not a mesh service" in reasons["gone"]
    rendered = policies.deliver(plan)  # what `up` does: the good one still applies
    assert rendered.touched == {"good": ["sidecar-booking-0"]}
    assert (
        "timeout: 2.000s"
        in (plan.layout.envoy / "sidecar-booking-0" / "rds-outbound.yaml").read_text()
    )


def test_applying_again_counts_generations_only_on_change(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert policies.apply(plan, GOOD)[0].generation == 1
    assert policies.apply(plan, GOOD)[0].generation == 1
    assert policies.apply(plan, GOOD.replace("2s", "3s"))[0].generation == 2
    assert [p.generation for p in policies.stored(plan)] == [2]
