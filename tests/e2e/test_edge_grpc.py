"""Native gRPC through the edge (cleartext h2c and TLS) and through a sidecar's
outbound listener, routed by :authority."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from tests.e2e.conftest import Mesh


def test_grpc_list_events_through_the_edge(mesh: Mesh) -> None:
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        reply, call = stub.ListEvents.with_call(pb.ListEventsRequest(page_size=4), timeout=10)
    assert len(reply.events) == 4
    assert str(dict(call.initial_metadata())["x-groundwork-instance"]).startswith("catalog-")


def test_grpc_over_tls(mesh: Mesh) -> None:
    credentials = grpc.ssl_channel_credentials(Path(mesh.ca).read_bytes())
    with grpc.secure_channel(mesh.plan.edge_https(), credentials) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        reply = stub.ListEvents(pb.ListEventsRequest(city="Berlin"), timeout=10)
    assert reply.events and all(e.venue.city == "Berlin" for e in reply.events)


def test_grpc_errors_keep_their_codes(mesh: Mesh) -> None:
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetEvent(
                pb.GetEventRequest(event_id="00000000-0000-4000-8000-000000000000"), timeout=10
            )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_sidecar_outbound_routes_by_authority(mesh: Mesh) -> None:
    address = mesh.plan.profile.listen_address("catalog", 0)
    outbound = f"{address}:{mesh.plan.mesh.ports.outbound}"
    with grpc.insecure_channel(outbound, options=[("grpc.default_authority", "catalog")]) as ch:
        reply = catalog_pb2_grpc.CatalogServiceStub(ch).ListEvents(
            pb.ListEventsRequest(page_size=1), timeout=10
        )
    assert len(reply.events) == 1
    with (
        grpc.insecure_channel(outbound, options=[("grpc.default_authority", "nowhere")]) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        catalog_pb2_grpc.CatalogServiceStub(ch).ListEvents(pb.ListEventsRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
