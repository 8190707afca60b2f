"""Native gRPC through the edge (cleartext h2c and TLS) and through a sidecar's
outbound listener, routed by :authority."""

from __future__ import annotations

import base64
import socket
import stat
from pathlib import Path

import grpc
import httpx
import pytest

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork.identity.v1 import identity_pb2, identity_pb2_grpc
from groundwork_cli.h2load import grpc_frame
from groundwork_cli.runtime.pki import Pki, ensure_server_cert
from tests.e2e.conftest import Mesh, envoy_stat


def test_grpc_list_events_through_the_edge(mesh: Mesh) -> None:
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        reply, call = stub.ListEvents.with_call(pb.ListEventsRequest(page_size=4), timeout=10)
    assert len(reply.events) == 4
    assert str(dict(call.initial_metadata())["x-groundwork-instance"]).startswith("catalog-")


def test_http_caching_headers_are_for_http_reads_only(mesh: Mesh) -> None:
    """REST reads get their ETag and Cache-Control (the edge's micro-cache and
    browsers use them); a gRPC read does not, even when it claims to be an HTTP
    read: sending them costs the service a round of its completion queue."""
    events = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1}).json()["events"]
    event_id = events[0]["event_id"]
    rest = httpx.get(
        f"{mesh.http}/v1/events/{event_id}/layout", headers={"accept-encoding": "identity"}
    )
    assert rest.headers["etag"] and rest.headers["cache-control"].startswith("public")
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        for metadata in ((), (("x-groundwork-http-read", "1"),)):
            reply, call = stub.GetSeatLayout.with_call(
                pb.GetSeatLayoutRequest(event_id=event_id), metadata=metadata, timeout=10
            )
            assert f'"{reply.layout_version}"' == rest.headers["etag"]
            headers = dict(call.initial_metadata())
            assert "etag" not in headers and "cache-control" not in headers, headers


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


def _sidecar_channel(mesh: Mesh, service: str, identity: str | None) -> grpc.Channel:
    """A direct mTLS connection to instance 0 of `service`'s sidecar, presenting
    `identity`'s mesh certificate (or none)."""
    pki = mesh.plan.layout.pki
    key = cert = None
    if identity:
        key = (pki / "mesh" / f"{identity}.key").read_bytes()
        cert = (pki / "mesh" / f"{identity}.crt").read_bytes()
    credentials = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes(), key, cert)
    address = mesh.plan.profile.listen_address(service, 0)
    return grpc.secure_channel(
        f"{address}:{mesh.plan.mesh.ports.inbound}",
        credentials,
        options=[("grpc.ssl_target_name_override", service)],
    )


def _foreign_ca_channel(mesh: Mesh, service: str) -> grpc.Channel:
    """A client certificate that claims the edge's identity, issued by another CA."""
    other = Pki(mesh.plan.layout.root / "foreign-pki")
    ensure_server_cert(other, "edge", ["edge"], [], [mesh.plan.profile.spiffe_id("edge")])
    credentials = grpc.ssl_channel_credentials(
        (mesh.plan.layout.pki / "ca.crt").read_bytes(),
        other.key("edge").read_bytes(),
        other.cert("edge").read_bytes(),
    )
    address = mesh.plan.profile.listen_address(service, 0)
    return grpc.secure_channel(
        f"{address}:{mesh.plan.mesh.ports.inbound}",
        credentials,
        options=[("grpc.ssl_target_name_override", service)],
    )


def test_sidecars_accept_only_mutual_tls_from_allowed_callers(mesh: Mesh) -> None:
    request = pb.ListEventsRequest(page_size=1)
    with _sidecar_channel(mesh, "catalog", "edge") as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        assert len(stub.ListEvents(request, timeout=10).events) == 1
    # A valid mesh certificate of a service that may not call catalog: 403.
    with _sidecar_channel(mesh, "catalog", "identity") as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListEvents(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # No client certificate, or one from another CA: the handshake fails.
    with _sidecar_channel(mesh, "catalog", None) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListEvents(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    with _foreign_ca_channel(mesh, "catalog") as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListEvents(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    # Cleartext to the mTLS port gets nowhere either.
    address = mesh.plan.profile.listen_address("catalog", 0)
    with (
        grpc.insecure_channel(f"{address}:{mesh.plan.mesh.ports.inbound}") as channel,
        pytest.raises(grpc.RpcError),
    ):
        catalog_pb2_grpc.CatalogServiceStub(channel).ListEvents(request, timeout=5)


def test_services_check_roles_themselves(mesh: Mesh) -> None:
    """Past the edge (as the edge, over mTLS) with no verified caller, an admin
    write is still refused by the catalog service itself."""
    with _sidecar_channel(mesh, "catalog", "edge") as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateEvent(pb.CreateEventRequest(idempotency_key="k" * 10), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_identity_headers_are_accepted_from_the_edge_alone(mesh: Mesh) -> None:
    """Booking may call catalog, but not as a user: a call with identity headers from
    any identity other than the edge's is refused by the callee's sidecar."""
    forged = (
        ("x-groundwork-user-id", "00000000-0000-0000-0000-000000000001"),
        ("x-groundwork-claims", "eyJyb2xlcyI6WyJhZG1pbiJdfQ"),  # {"roles":["admin"]}
    )
    request = pb.CreateEventRequest(idempotency_key="k" * 10)
    with _sidecar_channel(mesh, "catalog", "booking") as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateEvent(request, metadata=forged, timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Without them booking's own calls pass as before.
        assert stub.ListEvents(pb.ListEventsRequest(page_size=1), timeout=10).events
    # From the edge's identity the same headers reach the service (which checks the role).
    with _sidecar_channel(mesh, "catalog", "edge") as channel:
        with pytest.raises(grpc.RpcError) as info:
            catalog_pb2_grpc.CatalogServiceStub(channel).CreateEvent(
                request, metadata=forged, timeout=10
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_sidecar_outbound_refuses_services_it_may_not_call(mesh: Mesh) -> None:
    outbound = mesh.plan.profile.outbound_target(mesh.plan.mesh, "catalog", 0)
    with (
        grpc.insecure_channel(outbound, options=[("grpc.default_authority", "identity")]) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        catalog_pb2_grpc.CatalogServiceStub(ch).ListEvents(pb.ListEventsRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_services_are_reachable_only_through_their_sidecars(mesh: Mesh) -> None:
    """Apps listen on Unix sockets in a directory only the mesh's user may enter;
    nothing listens on the app port of an instance's address."""
    apps = mesh.plan.layout.run / "apps"
    assert stat.S_IMODE(apps.stat().st_mode) == 0o700
    for process in mesh.plan.services:
        assert process.listen.startswith(f"unix:{apps}/")
        assert process.listen in process.env.values()
        address = mesh.plan.profile.listen_address(process.service, process.instance)
        # The sidecar's outbound listener too: a socket only this user may connect to.
        outbound = process.env["GROUNDWORK_MESH_OUTBOUND"]
        assert outbound.startswith(f"unix:{apps}/")
        assert stat.S_IMODE(Path(outbound[5:]).stat().st_mode) == 0o600
        for port in (mesh.plan.mesh.ports.app, mesh.plan.mesh.ports.outbound):
            with socket.socket() as sock:
                sock.settimeout(1)
                assert sock.connect_ex((address, port)) != 0


LIST_EVENTS = "/groundwork.catalog.v1.CatalogService/ListEvents"
# The content types a gRPC, a gRPC-Web and a gRPC-Web-text client send.
KINDS = ["application/grpc", "application/grpc-web+proto", "application/grpc-web-text"]
SIGN_UP = "/groundwork.identity.v1.IdentityService/SignUp"


def _call(mesh: Mesh, path: str, kind: str, body: bytes) -> httpx.Response:
    # HTTP/1.1 carries gRPC-Web; native gRPC needs HTTP/2 (h2c with prior knowledge).
    native = kind == "application/grpc"
    with httpx.Client(http1=not native, http2=native, timeout=20) as client:
        content = base64.b64encode(body) if kind.endswith("-text") else body
        headers = {"content-type": kind, "te": "trailers"}
        return client.post(mesh.http + path, content=content, headers=headers)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "body",
    [
        b"",  # no message at all
        b"\x00\x00",  # a broken prefix
        grpc_frame(b"\x08" * 10)[:6],  # a message shorter than it says
        grpc_frame(b"") + grpc_frame(b""),  # two messages for a unary call
    ],
    ids=["empty", "short-prefix", "truncated", "two-messages"],
)
def test_a_call_without_exactly_one_message_is_refused_at_the_edge(
    mesh: Mesh, kind: str, body: bytes
) -> None:
    """A Python gRPC server waits for a message that never comes: such a call used
    to end in 9 s of per-try timeouts and a 504. Now the edge answers it,
    INVALID_ARGUMENT, and no service sees it."""
    admin = mesh.plan.edge_admin()
    before = envoy_stat(admin, "cluster.catalog.upstream_rq_total")
    reply = _call(mesh, LIST_EVENTS, kind, body)
    assert reply.status_code == 200, reply.text
    assert reply.headers["grpc-status"] == "3", reply.headers
    assert "exactly one whole message" in reply.headers["grpc-message"]
    assert envoy_stat(admin, "cluster.catalog.upstream_rq_total") == before
    # The same call with its one message is answered by catalog.
    answered = _call(mesh, LIST_EVENTS, kind, grpc_frame(b""))
    assert answered.status_code == 200 and "grpc-status" not in answered.headers, answered.headers


def test_a_message_over_the_size_limit_is_resource_exhausted(mesh: Mesh) -> None:
    """gRPC's own code for it, over gRPC and gRPC-Web alike (Envoy's 413 read as
    UNKNOWN before); REST keeps its 413."""
    password = "x" * (2 * 1024 * 1024)
    message = identity_pb2.SignUpRequest(email="big@example.com", password=password)
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.SignUp(message, timeout=20)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
    assert "1 MiB" in str(refused.value.details())
    for kind in KINDS[1:]:  # gRPC-Web, binary and text
        reply = _call(mesh, SIGN_UP, kind, grpc_frame(message.SerializeToString()))
        assert reply.headers.get("grpc-status") == "8", (kind, reply.status_code, reply.headers)
    body = {"email": "big@example.com", "password": password}
    rest = httpx.post(f"{mesh.http}/v1/auth/signup", json=body)
    assert rest.status_code == 413 and rest.headers["content-type"] == "application/json"
