"""GROUNDWORK_INSTANCES: how many instances of a service the local mesh runs,
the edge and every caller's sidecar balancing over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from groundwork_cli.runtime.plan import build
from groundwork_cli.runtime.settings import RuntimeSettings
from groundwork_envoy.render import render


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> RuntimeSettings:
    monkeypatch.setenv("GROUNDWORK_INSTANCES", value)
    return RuntimeSettings(state_dir=tmp_path, loopback_net=9, jaeger="off")


def test_instances_from_the_variable_reach_processes_and_envoy_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = build(_settings(tmp_path, monkeypatch, "catalog=4, booking=2"))
    names = [p.name for p in plan.services]
    assert [n for n in names if n.startswith("catalog-")] == [f"catalog-{i}" for i in range(4)]
    assert [n for n in names if n.startswith("booking-")] == ["booking-0", "booking-1"]
    assert "sidecar-catalog-3" in [p.name for p in plan.sidecars]
    configs = render(plan.mesh, plan.profile)
    assert "sidecar-catalog-3.yaml" in configs
    # The edge's clusters, and the sidecars of catalog's callers, list all four.
    for clusters in (configs["edge/cds.yaml"], configs["sidecar-booking-0/cds.yaml"]):
        assert all(plan.profile.listen_address("catalog", i) in clusters for i in range(4))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("catalog", "expected SERVICE=COUNT"),
        ("=3", "expected SERVICE=COUNT"),
        ("catalog=many", "valid integer"),
    ],
)
def test_a_malformed_value_is_refused_with_its_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        _settings(tmp_path, monkeypatch, value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nope=2", "no service 'nope'"),
        ("catalog=0", "catalog=0: Input should be greater than or equal to 1"),
        ("catalog=51", "catalog=51: Input should be less than or equal to 50"),
    ],
)
def test_a_count_mesh_yaml_would_refuse_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        build(_settings(tmp_path, monkeypatch, value))
