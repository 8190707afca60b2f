"""Real Jaeger v2 (built from the Go module proxy by tests/infra/gobuild.py), started
by `groundwork up` beside a mesh of its own: a purchase's whole trace is found
through Jaeger's own query API, its services named as Jaeger's UI shows them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests import edge_flows
from tests.conftest import eventually
from tests.e2e.conftest import Mesh, make_mesh
from tests.infra import gobuild


@dataclass(frozen=True)
class Running:
    mesh: Mesh
    up: str  # what `groundwork up` printed
    ui: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    binary = gobuild.binary("jaeger")
    mesh = make_mesh(tmp_path_factory.mktemp("jaeger"), 81, jaeger=str(binary), traces="true")
    up = mesh.cli("up").stdout
    try:
        assert mesh.plan.jaeger
        yield Running(mesh, up, mesh.plan.jaeger.ui())
    finally:
        mesh.cli("down", "--purge", check=False)


def test_up_starts_jaeger_and_prints_its_ui(running: Running) -> None:
    assert re.search(rf"Jaeger UI\s+{re.escape(running.ui)}", running.up), running.up
    assert httpx.get(running.ui).status_code == 200  # the UI's page itself
    # The web front end links its last request's trace id into this UI.
    page_config = httpx.get(f"{running.mesh.http}/web/config.json").json()
    assert page_config == {"trace_ui": running.ui}


def test_a_purchase_is_found_whole_through_jaegers_query_api(running: Running) -> None:
    trace_id, _, _ = running.mesh.purchase(8, "UPPER-R08-010")

    def whole() -> list[edge_flows.Span]:
        reply = httpx.get(f"{running.ui}/api/v3/traces/{trace_id}", timeout=10)
        assert reply.status_code == 200, reply.text[:300]
        spans = edge_flows.trace_spans(reply.json())
        assert any(s.service == "ticketing" and s.kind == edge_flows.CONSUMER for s in spans)
        services = {s.service for s in spans}
        assert {"edge", "booking-sidecar", "booking", "payments-sidecar", "payments"} <= services
        assert {"catalog", "ticketing"} <= services
        # One root, the edge's, and every parent present (spans arrive in batches, so
        # a parent may land a flush after its child: waited for, not excused).
        by_id = {s.span_id: s for s in spans}
        roots = [s for s in spans if not s.parent_id]
        assert [(r.service, r.name) for r in roots] == [("edge", "ingress")]
        assert [s for s in spans if s.parent_id and s.parent_id not in by_id] == []
        return spans

    eventually(whole, timeout=30)

    # The names a user picks from in the UI's service list.
    listed = httpx.get(f"{running.ui}/api/v3/services").json()["services"]
    assert {"edge", "booking-sidecar", "booking", "payments", "ticketing"} <= set(listed)

    # Jaeger passed the same spans on to the built-in receiver `groundwork trace` reads.
    def printed() -> None:
        # Read again until both lines are there: eventually() returns any string at
        # once, so a waterfall printed before the last spans came failed the test.
        text = running.mesh.cli("trace", trace_id).stdout
        assert "ticketing: booking process" in text and "edge: ingress" in text, text

    eventually(printed, timeout=15)
