"""Where the local mesh sends its spans: an explicit collector, Jaeger run beside it,
the built-in receiver, or nowhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from groundwork_cli.runtime import jaeger
from groundwork_cli.runtime.plan import Plan, build
from groundwork_cli.runtime.settings import RuntimeSettings


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "jaeger"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def _plan(tmp_path: Path, **settings: Any) -> Plan:
    chosen = {"state_dir": tmp_path, "loopback_net": 9, **settings}
    return build(RuntimeSettings.model_validate(chosen))


def _otlp_of_services(plan: Plan) -> set[str]:
    return {p.env["GROUNDWORK_OTLP_ENDPOINT"] for p in plan.services}


def test_no_endpoint_and_no_jaeger_means_no_tracing(tmp_path: Path) -> None:
    plan = _plan(tmp_path, jaeger="off")
    assert plan.jaeger is None
    assert plan.profile.otlp_endpoint == ""
    assert _otlp_of_services(plan) == {""}
    assert [p.name for p in plan.infra] == ["postgres", "redis"]


def test_a_named_jaeger_runs_beside_the_mesh_and_takes_every_span(
    tmp_path: Path, binary: Path
) -> None:
    plan = _plan(tmp_path, jaeger=str(binary))
    assert plan.jaeger and plan.jaeger.forward is None
    assert plan.profile.otlp_endpoint == "127.9.2.5:4317" == plan.jaeger.otlp()
    assert _otlp_of_services(plan) == {"127.9.2.5:4317"}
    process = next(p for p in plan.infra if p.name == "jaeger")
    assert process.command[0] == str(binary)
    assert {host for host, _ in process.binds} == {"127.9.2.5"}
    assert plan.jaeger.ui() == "http://127.9.2.5:16686"


def test_jaeger_forwards_to_the_built_in_receiver_when_both_are_asked(
    tmp_path: Path, binary: Path
) -> None:
    plan = _plan(tmp_path, jaeger=str(binary), traces=True)
    assert plan.jaeger and plan.jaeger.forward == "127.9.2.4:4317"
    assert [p.name for p in plan.infra][:2] == ["traces", "jaeger"]
    assert _otlp_of_services(plan) == {plan.jaeger.otlp()}


def test_an_explicit_endpoint_wins_over_jaeger(tmp_path: Path, binary: Path) -> None:
    plan = _plan(tmp_path, jaeger=str(binary), otlp_endpoint="127.0.0.1:4317")
    assert plan.jaeger is None
    assert _otlp_of_services(plan) == {"127.0.0.1:4317"}


def test_a_jaeger_setting_that_names_no_binary_is_refused_with_the_way_out(
    tmp_path: Path,
) -> None:
    with pytest.raises(jaeger.JaegerNotFound, match=r"not an executable file.*`off`"):
        _plan(tmp_path, jaeger=str(tmp_path / "missing"))


def test_jaeger_config_binds_only_its_host_and_forwards_when_asked() -> None:
    config = jaeger.config("127.9.2.5", forward="127.9.2.4:4317")
    endpoints = [
        config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        config["extensions"]["jaeger_query"]["http"]["endpoint"],
        config["extensions"]["jaeger_query"]["grpc"]["endpoint"],
    ]
    assert all(e.startswith("127.9.2.5:") for e in endpoints)
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]
    assert reader["pull"]["exporter"]["prometheus"]["host"] == "127.9.2.5"
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["exporters"] == ["jaeger_storage_exporter", "otlp/forward"]
    assert config["exporters"]["otlp/forward"]["endpoint"] == "127.9.2.4:4317"
    assert jaeger.config("127.9.2.5")["service"]["pipelines"]["traces"]["exporters"] == [
        "jaeger_storage_exporter"
    ]
