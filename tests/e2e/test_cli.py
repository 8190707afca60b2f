"""The operator's commands against the running mesh."""

from __future__ import annotations

import re

from tests.e2e.conftest import Mesh


def test_status_reports_every_process_and_cluster_healthy(mesh: Mesh) -> None:
    mesh.user_token()  # sign-up and login: RPCs for identity's figures
    result = mesh.cli("status")
    for name in (
        "postgres",
        "redis",
        "identity-0",
        "sidecar-identity-0",
        "booking-0",
        "sidecar-booking-0",
        "payments-0",
        "sidecar-payments-0",
        "ticketing-0",
        "sidecar-ticketing-0",
        "catalog-0",
        "catalog-1",
        "sidecar-catalog-0",
        "sidecar-catalog-1",
        "edge",
    ):
        assert name in result.stdout
    assert "all healthy" in result.stdout
    assert "catalog cache:" in result.stdout and "hit ratio" in result.stdout
    assert "bus lag on stream booking:" in result.stdout
    assert re.search(r"^identity\s+\d+ requests, \d+ errors, mean ", result.stdout, re.M)
    assert "DEGRADED" not in result.stdout


def test_up_while_up_says_so(mesh: Mesh) -> None:
    result = mesh.cli("up")
    assert "already up" in result.stdout


def test_logs_of_one_process(mesh: Mesh) -> None:
    result = mesh.cli("logs", "catalog-0", "--no-follow", "-n", "50")
    assert '"service": "catalog"' in result.stdout
    result = mesh.cli("logs", "nonsense", "--no-follow", check=False)
    assert result.returncode != 0 and "no process 'nonsense'" in result.stderr


def test_demo_runs_against_the_mesh(mesh: Mesh) -> None:
    result = mesh.cli("demo")
    assert "HTTP/2 200" in result.stdout
    assert "native gRPC" in result.stdout
