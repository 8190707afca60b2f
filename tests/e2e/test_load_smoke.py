"""Short Locust runs through the edge (`groundwork load`): any failed request or any
violation found by the correctness check afterwards fails the test. They buy on
events of their own, so other tests' seats are left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import edge_flows
from tests.e2e.conftest import Mesh


@pytest.fixture(scope="module")
def event_id(mesh: Mesh) -> str:
    return edge_flows.new_event(mesh.http, mesh.admin_token(), "Load Smoke")


def _load(mesh: Mesh, out: Path, *args: str) -> dict[str, object]:
    result = mesh.cli("load", *args, "--out", str(out), timeout=240, check=False)
    document: dict[str, object] = json.loads((out / "result.json").read_text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    return document


def test_a_small_flash_sale_through_the_waiting_room(mesh: Mesh, tmp_path: Path) -> None:
    """About 200 customers, prepared before the sale, queue, are admitted, race
    for seats and buy: no request fails and the check passes."""
    sale_event = edge_flows.new_event(mesh.http, mesh.admin_token(), "Small Flash Sale")
    document = _load(
        mesh,
        tmp_path,
        "flash-sale",
        "--event-id",
        sale_event,
        "--flash-users",
        "200",
        "--flash-ramp",
        "5",
        "--flash-hold",
        "15",
        "--customers-file",
        str(tmp_path / "customers.json"),
    )
    total = document["total"]
    assert isinstance(total, dict) and total["failures"] == 0 and total["requests"] > 400
    outcomes = document["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes["time in queue"]["count"] >= 20  # admitted through the room
    assert outcomes["ticket issued"]["count"] >= 20
    sale = document["sale"]
    assert isinstance(sale, dict)
    assert sale["preparation"]["customers"] == 200
    assert sale["waiting_room"]["event_id"] == sale_event
    assert sale["seats_sold"] == outcomes["ticket issued"]["count"]  # one seat each
    correctness = document["correctness"]
    assert isinstance(correctness, dict) and correctness["ok"], correctness


def test_buyers_watch_their_orders_and_reads_compare_grpc_with_rest(
    mesh: Mesh, event_id: str, tmp_path: Path
) -> None:
    buy = _load(
        mesh,
        tmp_path / "buy",
        "buy",
        "--event-id",
        event_id,
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "10s",
        "--think",
        "0.5",
        "--ticket-wait",
        "websocket",
        "--accounts",
        "4",
    )
    outcomes = buy["outcomes"]
    assert isinstance(outcomes, dict)
    assert outcomes["order paid (websocket)"]["count"] >= 4
    assert outcomes["ticket issued"]["count"] == outcomes["order paid (websocket)"]["count"]

    reads = _load(
        mesh, tmp_path / "reads", "reads", "-u", "4", "-r", "4", "-t", "8s", "--think", "0"
    )
    comparison = reads["grpc_vs_rest"]
    assert isinstance(comparison, dict)
    assert comparison["all reads"]["throughput_ratio"] > 0
    assert {"ListEvents", "GetEvent", "GetSeatMap"} <= set(comparison)
